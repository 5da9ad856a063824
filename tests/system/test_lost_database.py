"""Losing the database loses no captured data: each capture directory carries a manifest, a new database is
rebuilt from them, and what cannot be accounted for is quarantined, never deleted. A database that cannot be
used stops the daemon at start with one line, and /healthz tells the truth about it while it runs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ..support.apicalls import headers
from ..support.configs import write_config
from ..support.daemon import Daemon, free_port, running
from ..support.netns import B_IP

pytestmark = pytest.mark.root
FIELDS = ("id", "project_id", "type", "state", "packets", "bytes", "startTime", "stopTime", "data_bytes", "options")


def _capture(d: Daemon, token: str, seconds: float, **extra: object) -> str:
    now = time.time()
    r = httpx.get(d.url + "/capture/ethernet", headers=headers(token), timeout=30,
                  params={"start": now, "stop": now + seconds, "observationpt": "a", **extra})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_a_lost_database_is_rebuilt_from_the_capture_directories(tmp_path: Path, lan) -> None:
    with running(tmp_path, {"a": lan.ha}, gc_interval_seconds=0.5) as d:
        alice = _capture(d, "tok-alice", 2, id="incident")
        bob = _capture(d, "tok-bob", 2, id="incident")  # the same id in another project
        d.wait(alice, ("running",), project="alice")
        lan.run(lan.ns_a, "udp", B_IP, 5000, 30, 100)
        for project in ("alice", "bob"):
            d.wait("incident", ("complete", "truncated", "failed"), project=project)
        listed = {c["project_id"]: c for c in d.get("/captures").json()["captures"]}
        assert {c["state"] for c in listed.values()} == {"complete"} and listed["alice"]["packets"] >= 30
        pcap = httpx.get(d.url + "/retrieve", params={"id": "incident"}, headers=headers("tok-alice"), timeout=30)
        port = d.port
    for db in tmp_path.glob("opentap.db*"):
        db.unlink()
    stray = tmp_path / "data" / "projects" / "alice" / "not-a-capture"
    stray.mkdir()
    (stray / "notes.txt").write_text("no manifest here")
    d = Daemon(d.conf, port)
    d.start()
    try:
        time.sleep(1.5)  # a collector pass: nothing it does may delete data
        again = {c["project_id"]: c for c in d.get("/captures").json()["captures"]}
        assert {p: {k: c[k] for k in FIELDS} for p, c in again.items()} == \
            {p: {k: c[k] for k in FIELDS} for p, c in listed.items()}
        assert all("restored from its directory's manifest" in c["reason"] for c in again.values())
        mine = httpx.get(d.url + "/retrieve", params={"id": "incident"}, headers=headers("tok-alice"), timeout=30)
        assert mine.status_code == 200 and mine.content == pcap.content
        theirs = httpx.get(d.url + "/captures", headers=headers("tok-bob"), timeout=30).json()["captures"]
        assert [c["project_id"] for c in theirs] == ["bob"]  # ownership came back with the data
    finally:
        d.stop()
    assert bob == alice == "incident"
    assert not stray.exists()
    kept = list((tmp_path / "data" / "quarantine").glob("*-alice-not-a-capture"))
    assert len(kept) == 1 and (kept[0] / "notes.txt").read_text() == "no manifest here"
    assert "moved to" in (tmp_path / "daemon.log").read_text()


def test_a_corrupt_database_stops_the_daemon_with_one_line(tmp_path: Path) -> None:
    conf = write_config(tmp_path)
    (tmp_path / "opentap.db").write_bytes(b"this is not a database, " * 100)
    r = subprocess.run([sys.executable, "-m", "opentap", "serve", "--config", str(conf), "--listen",
                        f"127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"opentap: the database sqlite:///{tmp_path / 'opentap.db'} cannot be used: file is not a database"]
    assert not (tmp_path / "data" / "projects").exists()  # nothing was started on it


def test_healthz_reports_a_database_that_breaks_while_running(tmp_path: Path) -> None:
    with running(tmp_path) as d:
        assert httpx.get(d.url + "/healthz", timeout=5).json() == {"status": "ok", "database": "ok", "engine": "ok"}
        (tmp_path / "opentap.db").unlink()  # the daemon would go on writing into a file nobody will see again
        time.sleep(1.1)  # an answer is reused for a second (db/session.py: Health.MAX_AGE)
        r = httpx.get(d.url + "/healthz", timeout=5)
    assert r.status_code == 503 and r.json()["status"] == "error" and r.json()["database"] != "ok"
    assert "database" in r.json()["msg"]
