"""The capture engine picking up after a previous one (opentap/capture/engine.py: _recover, _resume, _begin; and
capture/recovery.py), on the in-memory capture type: a capture running at a crash resumes with the gap in its
reason, or is finished when its window passed meanwhile; scheduled captures found late start at once or fail; a
lost database is rebuilt from the manifests, and a directory nobody accounts for is quarantined. The same with
tcpdump and a killed daemon: tests/system/test_restart.py and test_lost_database.py."""

from __future__ import annotations

import errno
import re
import time

from ..support.enginerig import EngineRig
from ..support.memcapture import RECORD

WHEN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"  # how the engine writes a time into a reason
FINAL = ("complete", "truncated", "failed", "cancelled")
KILLED = OSError(errno.EINTR, "killed")  # a driver that cannot stop cleanly leaves its data hidden, as a crash does


def test_a_capture_running_at_a_crash_resumes_with_the_gap_in_its_reason(rig: EngineRig) -> None:
    rig.capture("c1", 1.5)
    rig.wait("c1", "running")
    rig.ticked("c1")
    rig.mem["c1"].stop_error = KILLED
    rig.restart()
    rig.mem["c1"].stop_error = None
    resumed = rig.row("c1")
    assert (resumed.state, resumed.segments) == ("running", 2)
    assert re.fullmatch(f"the daemon was down from about {WHEN} to {WHEN}: no data for that gap", resumed.reason)
    done = rig.wait("c1", *FINAL)
    assert (done.state, done.reason) == ("truncated", resumed.reason)  # a gap: never complete
    files = sorted(p.name for p in rig.directory("c1").iterdir())
    assert files == ["data-001.dat", "data-002.dat", "manifest.json"]  # the first segment's published at resume
    assert done.packets * RECORD == done.bytes == sum(p.stat().st_size for p in rig.directory("c1").glob("*.dat"))


def test_a_capture_whose_window_passed_while_down_is_finished_truncated(rig: EngineRig) -> None:
    rig.capture("c1", 0.5)
    rig.wait("c1", "running")
    rig.ticked("c1")
    rig.mem["c1"].stop_error = KILLED
    rig.restart(down_for=0.6)  # the window ends while no engine runs
    cap = rig.row("c1")
    assert cap.state == "truncated" and cap.segments == 1
    assert re.fullmatch(f"the daemon stopped at about {WHEN}, before the window ended; the data up to then is "
                        "kept", cap.reason), cap.reason
    assert cap.packets > 0 and [p.name for p in rig.directory("c1").glob("*.dat")] == ["data-001.dat"]


def test_scheduled_captures_found_late_start_at_once_or_fail(rig: EngineRig) -> None:
    now = time.time()
    rig.schedule("late", now - 5, now + 0.3)  # its start passed while nothing ran: it starts when found
    rig.schedule("missed", now - 10, now - 5)  # its whole window passed
    missed = rig.wait("missed", *FINAL)
    assert (missed.state, missed.reason) == ("failed", "the daemon was not running during the capture window")
    assert missed.started_at is None and not rig.directory("missed").exists()
    late = rig.wait("late", *FINAL)
    said = re.fullmatch(r"started (\d+) s late \(the daemon was not running\)", late.reason)
    assert late.state == "truncated" and said and int(said[1]) >= 5, late.reason
    assert late.packets > 0


def test_a_lost_database_is_rebuilt_from_the_manifests(rig: EngineRig) -> None:
    rig.capture("done", 0.3, project="bob")
    before = rig.wait("done", *FINAL, project="bob")
    rig.capture("live", 30)
    rig.wait("live", "running")
    rig.ticked("live")
    stray = rig.cfg.data_dir / "projects" / "bob" / "stray"  # a directory without a manifest
    stray.mkdir()
    (stray / "data-001.dat").write_bytes(b"x" * RECORD)
    rig.restart(lose_database=True)
    restored = "restored from its directory's manifest: the database did not know it"
    done = rig.row("done", project="bob")
    assert done is not None and (done.state, done.reason) == ("complete", restored)
    same = ("packets", "bytes", "start", "stop", "finished_at")
    assert [getattr(done, k) for k in same] == [getattr(before, k) for k in same]
    live = rig.row("live")  # its manifest said running (and stopped): restored, then resumed as after a stop
    assert (live.project_id, live.state, live.segments) == ("alice", "running", 2)
    assert re.fullmatch(f"device stopped at {WHEN}; {restored}; restarted at {WHEN}: no data for that gap",
                        live.reason), live.reason
    assert rig.row("stray", project="bob") is None and not stray.exists()
    kept = list((rig.cfg.data_dir / "quarantine").iterdir())  # never deleted: kept for an administrator
    assert len(kept) == 1 and kept[0].name.endswith("-bob-stray") and (kept[0] / "data-001.dat").exists()
