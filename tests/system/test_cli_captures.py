"""The capture commands and the demo, as a person runs them: `opentap capture|captures|retrieve|…` against a
live daemon watching machine A's interface while A really sends, over HTTP and over SSH."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from ..support.daemon import Daemon, running
from ..support.netns import B_IP, Lan
from ..support.sshd import REASON as SSH_REASON
from ..support.sshd import running_sshd

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]  # the checkout: tests/system/ is two below it


@pytest.fixture
def device(lan: Lan, tmp_path: Path) -> Iterator[Daemon]:
    with running(tmp_path, {"a": lan.ha}) as d:
        yield d


def opentap(device: Daemon, *args: str, **kwargs: object) -> subprocess.CompletedProcess:
    env = dict(os.environ, OPENTAP_URL=device.url, OPENTAP_TOKEN="tok-alice")
    return subprocess.run([sys.executable, "-m", "opentap", *args], env=env, capture_output=True, text=True,
                          timeout=60, **kwargs)


def capture_while_sending(device: Daemon, lan: Lan, *args: str) -> subprocess.CompletedProcess:
    """`opentap capture … --wait` over a 3 s window in which A sends 20 DNS-like and 30 other datagrams to B."""
    env = dict(os.environ, OPENTAP_URL=device.url, OPENTAP_TOKEN="tok-alice")
    proc = subprocess.Popen([sys.executable, "-m", "opentap", "capture", *args, "--duration", "3s", "--wait"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        device.wait(wait_for_running(device), ("running",))
        lan.run(lan.ns_a, "udp", B_IP, 53, 20, 100)
        lan.run(lan.ns_a, "udp", B_IP, 5001, 30, 64)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def wait_for_running(device: Daemon) -> str:
    """The id of the one capture on the device, once it exists."""
    for _ in range(200):
        listed = device.get("/captures").json()["captures"]
        if listed:
            return listed[-1]["id"]
        subprocess.run(["sleep", "0.05"], check=True)
    raise AssertionError("no capture was scheduled")


def test_capture_commands(device: Daemon, lan: Lan, tmp_path: Path) -> None:
    r = opentap(device, "capabilities")
    assert r.returncode == 0 and "Observation points:" in r.stdout and "| a " in r.stdout, r.stderr
    assert json.loads(opentap(device, "capabilities", "-f", "json").stdout)["network_observation_pts"] == ["a"]

    r = capture_while_sending(device, lan, "netflow", "--point", "a", "-f", "json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["state"] == "complete" and info["observationpt"] == "a"
    cid = info["id"]

    listed = opentap(device, "captures")
    assert cid in listed.stdout and "complete" in listed.stdout and "start (UTC)" in listed.stdout
    assert [c["id"] for c in json.loads(opentap(device, "captures", "-f", "json").stdout)] == [cid]
    shown = opentap(device, "capture-show", cid)
    assert "| id " in shown.stdout and cid in shown.stdout and "| state " in shown.stdout and "complete" in shown.stdout
    assert json.loads(opentap(device, "capture-show", cid, "-f", "json").stdout)["packets"] == info["packets"]

    csv_text = opentap(device, "retrieve", cid).stdout  # as the API sends it, to standard output
    assert csv_text == device.get("/retrieve", id=cid).text and csv_text.startswith("ts,te,td,sa,da,sp,dp,pr,")
    r = opentap(device, "retrieve", cid, "-o", str(tmp_path / "flows.parquet"))
    assert r.returncode == 0 and "wrote" in r.stderr
    frame = pd.read_parquet(tmp_path / "flows.parquet")
    udp = frame[frame["pr"] == "UDP"].set_index("dp")
    assert udp.loc[53, "ipkt"] == 20 and udp.loc[5001, "ipkt"] == 30
    assert str(frame["ts"].dtype) == "datetime64[ns, UTC]" and str(frame["ipkt"].dtype) == "int64"

    r = opentap(device, "capture", "ethernet", "--point", "nowhere", "--duration", "1s")
    assert r.returncode == 1 and "unknown observation point 'nowhere'" in r.stderr
    r = opentap(device, "capture-delete", cid)
    assert r.returncode == 0 and r.stdout.strip() == f"deleted capture {cid}"
    assert opentap(device, "captures").stdout.strip() == "no captures"
    r = opentap(device, "retrieve", cid)
    assert r.returncode == 1 and f"no capture with id '{cid}'" in r.stderr


@pytest.mark.skipif(SSH_REASON is not None, reason=SSH_REASON or "")
def test_capture_commands_over_ssh(device: Daemon, lan: Lan, tmp_path: Path) -> None:
    with running_sshd(tmp_path / "ssh", device.conf) as sshd:
        ssh = ["--url", sshd.url, "--identity", str(sshd.identity)]
        for option in sshd.options():
            ssh += ["--ssh-option", option]
        r = opentap(device, "capabilities", *ssh, "-f", "json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["project"] == "alice"  # the key's project, from the config
        r = capture_while_sending(device, lan, "ethernet", "--point", "a", "-f", "json", *ssh)
        assert r.returncode == 0, r.stderr
        cid = json.loads(r.stdout)["id"]
        r = opentap(device, "retrieve", cid, "-o", str(tmp_path / "a.pcap"), *ssh)
        assert r.returncode == 0, r.stderr
        pcap = (tmp_path / "a.pcap").read_bytes()
        assert pcap[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1")  # a pcap file, byte for byte as served
        assert pcap == device.get("/retrieve", id=cid).content


def test_demo_writes_its_picture(device: Daemon, lan: Lan, tmp_path: Path) -> None:
    """The demo, shortened to 3 s: the DataFrame's structure, its first row, and a PNG naming DNS."""
    png = tmp_path / "demo.png"
    env = dict(os.environ, OPENTAP_URL=device.url, OPENTAP_TOKEN="tok-alice")
    proc = subprocess.Popen([sys.executable, str(ROOT / "examples" / "demo.py"), "--point", "a", "--duration", "3",
                             "--png", str(png)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        device.wait(wait_for_running(device), ("running",))
        lan.run(lan.ns_a, "udp", B_IP, 53, 20, 100)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "datetime64[ns, UTC]" in out and "Its first row:" in out and "DNS" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
