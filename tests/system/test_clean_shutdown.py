"""SIGTERM is a clean stop, not a crash: a netflow capture's open flows are written out, the capture says the
device was stopped (and when), and the next start resumes it as before."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pandas as pd
import pytest

from ..support.configs import write_config
from ..support.daemon import Daemon
from ..support.netns import A_IP, B_IP

pytestmark = pytest.mark.root

PORTS = range(7000, 7005)


def flows(text: str) -> pd.DataFrame:
    df = pd.read_csv(io.StringIO(text))
    return df[: len(df) - 3].astype({"sp": int, "dp": int, "ipkt": int})  # without nfdump's Summary trailer


def test_sigterm_writes_out_every_open_flow(tmp_path: Path, lan) -> None:
    # a long idle timeout: nothing ends the flows but the stop itself
    d = Daemon(write_config(tmp_path, {"a": lan.ha}, flow_idle_timeout=300, gc_interval_seconds=0.5))
    d.start()
    try:
        now = time.time()
        cid = d.get("/capture/netflow", id="nf-term", start=now, stop=now + 14, observationpt="a").json()["id"]
        d.wait(cid, ("running",))
        for port in PORTS:
            lan.run(lan.ns_a, "udp", B_IP, port, 4, 50)
        time.sleep(1.5)  # tcpdump writes them out; the meter reads them: open flows, none finished
        d.proc.terminate()
        assert d.proc.wait(30) == 0
        capdir = tmp_path / "data" / "projects" / "admin" / cid
        log = (tmp_path / "daemon.log").read_text()
        assert "stopped for shutdown" in log, log
        d.start()
        cap = d.wait(cid, ("running",))
        assert "device stopped at" in cap["reason"] and "daemon was down" not in cap["reason"], cap["reason"]
        lan.run(lan.ns_a, "udp", B_IP, 7100, 3, 50)  # after the restart: a flow of the second segment
        cap = d.wait(cid, ("truncated", "complete", "failed"), timeout=25)
        assert cap["state"] == "truncated", cap
        df = flows(d.get("/retrieve", id=cid).text)
        udp = df[(df.pr == "UDP") & (df.sa == A_IP)]
        assert sorted(udp.dp) == [*PORTS, 7100], df
        assert list(udp.ipkt) == [4] * len(PORTS) + [3]
        assert cap["stats"]["flows"] == len(df) and not list(capdir.glob(".flows.csv"))
    finally:
        d.stop()
