"""SIGTERM is a clean stop, not a crash: a netflow capture's open flows are written out, the capture says the
device was stopped (and when), and the next start resumes it as before."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from opentap import tlscert
from opentap.api.server import GRACEFUL_STOP_SECONDS

from ..support.configs import write_config
from ..support.daemon import Daemon, free_port
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


def test_ready_when_the_api_answers_and_stopping_on_sigterm(tmp_path: Path) -> None:
    """What systemd (Type=notify) and start_opentap.sh see: READY=1 and the pid file once the API answers,
    STOPPING=1 at SIGTERM, the pid file gone at exit."""
    port = free_port()
    conf = write_config(tmp_path, listen=f"127.0.0.1:{port}")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(30)
    pid_file = tmp_path / "run" / "opentap.pid"
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")}
    with open(tmp_path / "daemon.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "opentap", "serve", "--config", str(conf), "--pid-file",
                                 str(pid_file)], env=env, stdout=log, stderr=log)
    try:
        assert notify.recv(100) == b"READY=1"
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200  # at once: no retry needed
        assert pid_file.read_text() == f"{proc.pid}\n"
        proc.terminate()
        assert notify.recv(100) == b"STOPPING=1"
        assert proc.wait(30) == 0 and not pid_file.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()


def test_an_idle_https_client_does_not_hold_the_stop(tmp_path: Path) -> None:
    """A client that keeps its HTTPS connection open and idle (every SDK session does) never answers the TLS
    close_notify the stop sends; the stop waited 30 s for it, and now at most GRACEFUL_STOP_SECONDS."""
    port = free_port()
    tlscert.generate(tmp_path / "tls.crt", tmp_path / "tls.key", ["localhost"], ["127.0.0.1"])
    conf = write_config(tmp_path, listen=f"127.0.0.1:{port}", tls_cert="tls.crt", tls_key="tls.key")
    with open(tmp_path / "daemon.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "opentap", "serve", "--config", str(conf)],
                                stdout=log, stderr=log)
    client = httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=str(tmp_path / "tls.crt"), timeout=5)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "daemon.log").read_text()
                time.sleep(0.1)
        began = time.monotonic()
        proc.terminate()  # the client's connection stays open, idle
        assert proc.wait(30) == 0
        assert time.monotonic() - began < GRACEFUL_STOP_SECONDS + 3
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
