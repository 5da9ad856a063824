"""How much of the device a capture may take (opentap/capture/limits.py, enforced by the engine), on the
in-memory capture type: concurrent windows per project and per device (429), the disk quota per project and per
device (507 for new requests; running captures stopped, the project filling the disk first), and the messages,
which speak of the caller's own project only. Through the API: test_project_isolation.py; with tcpdump:
tests/system/test_project_disk_quota.py."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest

from opentap.capture.errors import RequestError

from ..support.enginerig import EngineRig

WHEN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
FINAL = ("complete", "truncated", "failed", "cancelled")
RETRY = "delete captures or wait for the retention period to pass"


def refused(rig: EngineRig, cid: str, project: str, start: float, stop: float) -> RequestError:
    with pytest.raises(RequestError) as e:
        rig.schedule(cid, start, stop, project)
    assert rig.row(cid, project) is None  # nothing stored
    return e.value


def test_concurrent_windows_are_limited_per_project_and_per_device(make_rig: Callable[..., EngineRig]) -> None:
    rig = make_rig(max_concurrent_captures=3, project_max_concurrent_captures=2)
    later = time.time() + 600
    rig.schedule("a1", later, later + 10)
    rig.schedule("a2", later + 5, later + 15)
    e = refused(rig, "a3", "alice", later + 9, later + 20)
    assert (e.status, e.msg) == (429, "too many concurrent captures: your project already has 2 overlapping this "
                                      "window, its limit of 2; choose another window")
    rig.schedule("a3", later + 15, later + 25)  # back to back with a2: not overlapping
    rig.schedule("b1", later, later + 10, "bob")  # alice's two take none of bob's share
    e = refused(rig, "b2", "bob", later, later + 10)
    assert (e.status, e.msg) == (429, "too many concurrent captures: this device has no free slot in this window "
                                      "(it runs at most 3 at once); choose another window")


def test_a_project_over_its_quota_is_stopped_and_refused_and_no_other(make_rig: Callable[..., EngineRig]) -> None:
    rig = make_rig(project_disk_quota_mb=0.01)  # 10 KiB a project
    rig.mem["hog"].records_per_tick = 200  # 12.5 KiB a tick
    rig.mem["quiet"].records_per_tick = 1
    rig.capture("hog", 30)
    rig.capture("quiet", 1.0, "bob")
    hog = rig.wait("hog", *FINAL)
    assert hog.state == "truncated" and hog.finished_at < hog.stop, hog.reason
    assert re.fullmatch(f"stopped at {WHEN}: your project's disk quota of 0.01 MB for captured data was reached",
                        hog.reason), hog.reason
    e = refused(rig, "more", "alice", time.time() + 60, time.time() + 70)
    assert (e.status, e.msg) == (507, f"your project's disk quota of 0.01 MB for captured data is full; {RETRY}")
    quiet = rig.wait("quiet", *FINAL, project="bob")
    assert (quiet.state, quiet.reason) == ("complete", "")
    rig.schedule("more", time.time() + 60, time.time() + 70, "bob")  # bob still has room


def test_a_full_device_stops_the_project_filling_it_then_the_rest(make_rig: Callable[..., EngineRig]) -> None:
    rig = make_rig(disk_quota_mb=0.02, project_disk_quota_mb=1)  # 20 KiB for the device; projects not the limit
    rig.mem["hog"].records_per_tick = 200  # 12.5 KiB a tick
    rig.mem["quiet"].records_per_tick = 1
    rig.capture("quiet", 30, "bob")
    rig.capture("hog", 30)
    hog = rig.wait("hog", *FINAL)
    assert hog.state == "truncated" and re.fullmatch(
        f"stopped at {WHEN}: this device's disk space for captured data was full, and your project holds the most "
        "of it", hog.reason), hog.reason
    # what hog wrote stays: the disk is still full, of finished data now, so nothing running can go on
    quiet = rig.wait("quiet", *FINAL, project="bob")
    assert quiet.state == "truncated" and quiet.finished_at >= hog.finished_at and re.fullmatch(
        f"stopped at {WHEN}: this device's disk space for captured data was full", quiet.reason), quiet.reason
    e = refused(rig, "more", "bob", time.time() + 60, time.time() + 70)
    assert (e.status, e.msg) == (507, f"this device's disk space for captured data is full; {RETRY}")
