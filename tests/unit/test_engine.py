"""The capture engine (opentap/capture/engine.py) on the in-memory capture type: a scheduled capture starts, runs and
completes; every way a driver or its disk fails ends the capture with the right state and its reason; data found
missing after the end is recorded. Recovery: test_engine_recovery.py; limits and quotas: test_engine_limits.py.
The same with tcpdump and real disks: tests/system/test_data_safety.py and test_capture_traffic.py."""

from __future__ import annotations

import errno
import re
import time

from opentap.capture import manifest
from opentap.db.models import find

from ..support.enginerig import EngineRig
from ..support.memcapture import READ_ONLY, RECORD

WHEN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"  # how the engine writes a time into a reason


def test_a_scheduled_capture_starts_runs_and_completes(rig: EngineRig) -> None:
    before = time.time()
    assert rig.capture("c1", 0.5, after=0.3).state == "scheduled"
    running = rig.wait("c1", "running")
    assert running.started_at >= before + 0.3 and running.segments == 1
    done = rig.wait("c1", "complete", "truncated", "failed")
    assert (done.state, done.reason) == ("complete", "")
    assert done.finished_at >= done.stop and done.child_pid is None
    files = [p.name for p in rig.directory("c1").iterdir()]
    assert sorted(files) == ["data-001.dat", "manifest.json"]  # published: nothing hidden is left
    assert done.bytes == (rig.directory("c1") / "data-001.dat").stat().st_size == done.packets * RECORD > 0
    assert manifest.read(rig.directory("c1"))["state"] == "complete"
    assert manifest.read(rig.directory("c1"))["files"] == {"data-001.dat": done.bytes}


def test_a_driver_that_dies_ends_its_capture_with_its_reason(rig: EngineRig) -> None:
    rig.mem["empty"].dies = "tcpdump: that device is not up"  # dead before it wrote anything
    rig.capture("empty", 5)
    failed = rig.wait("empty", "complete", "truncated", "failed")
    assert (failed.state, failed.reason, failed.packets) == ("failed", "tcpdump: that device is not up", 0)
    rig.capture("partial", 5)
    rig.wait("partial", "running")
    rig.ticked("partial")  # it wrote some records
    rig.mem["partial"].dies = "tcpdump exited with status 1"
    cut = rig.wait("partial", "complete", "truncated", "failed")
    assert (cut.state, cut.reason) == ("truncated", "tcpdump exited with status 1")  # what it wrote is kept
    assert cut.packets > 0 and cut.finished_at < cut.stop


def test_a_driver_that_cannot_start_fails_the_capture(rig: EngineRig) -> None:
    rig.mem["c1"].start_error = OSError(errno.ENODEV, "No such device")
    rig.capture("c1", 5)
    cap = rig.wait("c1", "complete", "truncated", "failed")
    assert cap.state == "failed" and cap.reason == "[Errno 19] No such device" and cap.started_at is None


def test_a_full_disk_when_stopping_truncates_and_keeps_the_data(rig: EngineRig) -> None:
    rig.mem["c1"].stop_error = OSError(errno.ENOSPC, "No space left on device")
    rig.capture("c1", 0.5)
    cap = rig.wait("c1", "complete", "truncated", "failed")
    assert cap.state == "truncated" and re.fullmatch(f"disk full at {WHEN}", cap.reason), cap.reason
    # the driver could not publish; the engine's finalize did, and counted it
    assert [p.name for p in sorted(rig.directory("c1").glob("*.dat"))] == ["data-001.dat"] and cap.packets > 0


def test_a_read_only_disk_fails_the_capture_with_its_reason(rig: EngineRig) -> None:
    rig.capture("c1", 0.6)
    rig.wait("c1", "running")
    rig.mem["c1"].read_only = True  # the data disk remounted read-only under the running capture
    cap = rig.wait("c1", "complete", "truncated", "failed")
    assert cap.state == "failed", cap.reason
    # said by the driver's stop and by the engine's own publishing, both in the same second or not
    said = set(re.sub(WHEN, "T", cap.reason).split("; "))
    assert said == {f"its data could not be written at T: {READ_ONLY}"}, cap.reason
    rig.capture("next", 0.3)  # the engine carries on with the others
    assert rig.wait("next", "complete", "truncated", "failed").state == "complete"


def test_problems_the_driver_reports_truncate_the_capture(rig: EngineRig) -> None:
    rig.mem["c1"].problems = ["tcpdump dropped 7 packets"]
    rig.capture("c1", 0.3)
    cap = rig.wait("c1", "complete", "truncated", "failed")
    assert (cap.state, cap.reason) == ("truncated", "tcpdump dropped 7 packets")


def test_cancelling_a_running_capture_keeps_its_data(rig: EngineRig) -> None:
    rig.capture("c1", 30)
    rig.wait("c1", "running")
    rig.ticked("c1")
    rig.engine.call(lambda s: rig.engine.cancel(s, find(s, "alice", "c1"), "alice"))  # as DELETE does
    cap = rig.wait("c1", "cancelled")
    assert cap.reason == "cancelled by alice" and cap.packets > 0
    assert [p.name for p in rig.directory("c1").glob("*.dat")] == ["data-001.dat"]


def test_data_found_missing_after_the_end_is_recorded(rig: EngineRig) -> None:
    rig.mem["c1"].records_per_tick = 64  # 4 KiB a tick: far more than its manifest
    rig.capture("c1", 0.3)
    done = rig.wait("c1", "complete", "truncated", "failed")
    assert done.state == "complete" and done.data_bytes > done.bytes >= 64 * RECORD
    directory = rig.directory("c1")
    (directory / "data-001.dat").unlink()
    gone = manifest.missing_files(directory, manifest.read(directory))  # what a retrieve checks first
    assert gone == ["data-001.dat"]
    what = f"data files removed or cut after it finished: {', '.join(gone)}"
    for _ in range(2):  # said once, however often it is found
        rig.engine.call(lambda s: rig.engine.data_lost(s, "alice", "c1", what))
    cap = rig.row("c1")
    assert (cap.state, cap.reason) == ("truncated", what)
    assert cap.data_bytes < 64 * RECORD  # what it holds now: its manifest, which the disk quota counts
    doc = manifest.read(directory)
    assert doc["state"] == "truncated" and doc["files"] == {"data-001.dat": cap.bytes}  # still listed: still missing
