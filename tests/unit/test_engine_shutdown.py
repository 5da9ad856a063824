"""A clean stop of the engine (SIGTERM) is recorded as such, unlike a crash: the running capture's reason says
when the device stopped, and the next start resumes it saying when it restarted, or finishes it when its
window passed meanwhile. The same with tcpdump, the flow meter and a real daemon: tests/system/
test_clean_shutdown.py."""

from __future__ import annotations

import re

from ..support.enginerig import EngineRig

WHEN = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
FINAL = ("complete", "truncated", "failed", "cancelled")


def test_a_clean_stop_is_recorded_and_the_capture_resumes(rig: EngineRig) -> None:
    rig.capture("c1", 1.5)
    rig.wait("c1", "running")
    rig.ticked("c1")
    rig.restart()
    resumed = rig.row("c1")
    assert (resumed.state, resumed.segments) == ("running", 2)
    assert re.fullmatch(f"device stopped at {WHEN}; restarted at {WHEN}: no data for that gap", resumed.reason)
    done = rig.wait("c1", *FINAL)
    assert (done.state, done.reason) == ("truncated", resumed.reason)


def test_a_window_that_ends_while_stopped_is_finished_with_the_data_kept(rig: EngineRig) -> None:
    rig.capture("c1", 0.5)
    rig.wait("c1", "running")
    rig.ticked("c1")
    rig.restart(down_for=0.6)
    cap = rig.row("c1")
    assert cap.state == "truncated" and cap.segments == 1 and cap.packets > 0
    assert re.fullmatch(f"device stopped at {WHEN}; the window ended before the device was started again; the "
                        "data up to the stop is kept", cap.reason), cap.reason
