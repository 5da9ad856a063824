"""kill -9 of the daemon: children go with it, scheduled captures still start, running ones resume or are
marked truncated with their data kept, and no tcpdump is left behind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support.configs import write_config
from ..support.daemon import Daemon
from ..support.netns import B_IP
from ..support.procs import tcpdumps_for

pytestmark = pytest.mark.root


@pytest.fixture
def daemon(tmp_path: Path, lan) -> Iterator[Daemon]:
    d = Daemon(write_config(tmp_path, {"a": lan.ha}, gc_interval_seconds=0.5))
    d.start()
    yield d
    d.stop()


def test_kill9_resumes_running_and_starts_scheduled(daemon: Daemon, lan, tmp_path: Path) -> None:
    now = time.time()
    running = daemon.get("/capture/ethernet", id="r1", start=now, stop=now + 9, observationpt="a").json()["id"]
    later = daemon.get("/capture/ethernet", id="s1", start=now + 6, stop=now + 8, observationpt="a",
                       filter="udp port 5001").json()["id"]
    daemon.wait(running, ("running",))
    lan.run(lan.ns_a, "udp", B_IP, 5000, 20, 10)
    time.sleep(1.2)  # let tcpdump write them out
    capdir = tmp_path / "data" / "projects" / "admin" / running
    assert tcpdumps_for(capdir)
    daemon.kill9()
    deadline = time.monotonic() + 5
    while tcpdumps_for(capdir):  # the parent-death signal takes tcpdump down with the daemon
        assert time.monotonic() < deadline, "tcpdump outlived the killed daemon"
        time.sleep(0.05)
    lan.run(lan.ns_a, "udp", B_IP, 5000, 5, 10)  # while the daemon is down: lost, and the record says so
    daemon.start()
    cap = daemon.wait(running, ("running",))
    assert "daemon was down" in cap["reason"]
    lan.run(lan.ns_a, "udp", B_IP, 5000, 10, 10)
    daemon.wait(later, ("running",))
    lan.run(lan.ns_a, "udp", B_IP, 5001, 4, 10)
    cap = daemon.wait(running, ("truncated", "complete", "failed"), timeout=15)
    assert cap["state"] == "truncated" and "no data for that gap" in cap["reason"]
    r = daemon.get("/retrieve", id=running, format="csv")
    udp = [ln for ln in r.text.splitlines() if ",UDP," in ln]
    assert len([ln for ln in udp if ",5000," in ln]) == 30 and len([ln for ln in udp if ",5001," in ln]) == 4
    sched = daemon.wait(later, ("complete", "truncated", "failed"))
    assert (sched["state"], sched["packets"], sched["reason"]) == ("complete", 4, "")
    assert tcpdumps_for(tmp_path / "data") == []


def test_kill9_past_the_window_keeps_the_data(daemon: Daemon, lan) -> None:
    now = time.time()
    cid = daemon.get("/capture/ethernet", start=now, stop=now + 3, observationpt="a", filter="udp").json()["id"]
    daemon.wait(cid, ("running",))
    lan.run(lan.ns_a, "udp", B_IP, 5000, 12, 10)
    time.sleep(1.2)
    daemon.kill9()
    time.sleep(max(0.0, now + 3.5 - time.time()))  # the window ends while the daemon is down
    daemon.start()
    cap = daemon.wait(cid, ("truncated", "complete", "failed"))
    assert cap["state"] == "truncated" and "before the window ended" in cap["reason"] and cap["packets"] == 12
    assert daemon.get("/retrieve", id=cid).status_code == 200
