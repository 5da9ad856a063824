"""From an attacker's side: a project member capturing loopback must not pick up anyone's credentials, SSH
callers reach the daemon only on its Unix socket, and beyond loopback the API is HTTPS that clients can pin."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from opentap.cli.main import main
from opentap.client import Device
from opentap.client.transport import DeviceError
from opentap.pcap import pcapfile

from ..support.apicalls import headers
from ..support.daemon import Daemon, free_port, running

pytestmark = pytest.mark.root
MARK = b"opentap-capture-marker-0123456789"


def invoke(conf: Path, command: str, key: str = "tester") -> subprocess.CompletedProcess:
    env = dict(os.environ, SSH_ORIGINAL_COMMAND=command, OPENTAP_CONF=str(conf))
    return subprocess.run([sys.executable, "-m", "opentap", "invoke", "--key", key], env=env, capture_output=True,
                          timeout=60)


def _lo_capture(d: Daemon, token: str, seconds: float, **extra: object) -> httpx.Response:
    now = time.time()
    return httpx.get(d.url + "/capture/ethernet", headers=headers(token), timeout=30,
                     params={"start": now, "stop": now + seconds, "observationpt": "lo", **extra})


def test_a_members_loopback_capture_holds_no_token_and_no_signature(tmp_path: Path) -> None:
    # lo is usable by members here on purpose (generated configs make it admin-only): even then, nothing leaks
    with running(tmp_path, {"lo": "lo"}) as d:
        mine = _lo_capture(d, "tok-alice", 15).json()
        assert mine["device_filter"].startswith("not (tcp and ") and f"port {d.port}" in mine["device_filter"]
        everything = _lo_capture(d, "tok-admin", 15, exclude_device_traffic="false").json()
        assert everything["device_filter"] is None
        d.wait(mine["id"], ("running",))
        d.wait(everything["id"], ("running",))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:  # traffic the capture must hold
            rx.bind(("127.0.0.1", 0))
            for _ in range(10):
                tx.sendto(MARK, rx.getsockname())
        for _ in range(3):  # the admin at work over TCP, and an SSH user's calls
            assert httpx.get(d.url + "/capabilities", headers=headers("tok-admin"), timeout=10).status_code == 200
            assert invoke(d.conf, "captures").returncode == 0
        assert time.time() < mine["stopTime"] - 1, "the calls took longer than the window: make it longer"
        for cid in (mine["id"], everything["id"]):
            assert d.wait(cid, ("complete", "truncated", "failed"))["state"] == "complete"
        alice = httpx.get(d.url + "/retrieve", params={"id": mine["id"]}, headers=headers("tok-alice"), timeout=30)
        admin = httpx.get(d.url + "/retrieve", params={"id": everything["id"]}, headers=headers(), timeout=30)
    assert alice.status_code == admin.status_code == 200
    assert alice.content.count(MARK) == 10  # the capture worked
    # (other daemons on this host, other tests' say, may talk on lo too: look at this device's port only)
    assert _tcp_payload(alice.content, d.port) == b""
    # the admin's unfiltered capture shows what the filter kept out (so the check above can fail); the SSH
    # user's calls went over the Unix socket, which no capture sees
    seen = _tcp_payload(admin.content, d.port)
    assert b"X-Auth-Token: tok-admin" in seen or b"x-auth-token: tok-admin" in seen
    assert admin.content.count(MARK) == 10 and b"x-opentap-ssh-key" not in admin.content.lower()


def _tcp_payload(pcap: bytes, port: int) -> bytes:
    """The TCP payload bytes to or from port in a loopback capture (Ethernet framing, IPv4)."""
    fd = os.memfd_create("pcap")
    path = Path(f"/proc/self/fd/{fd}")
    path.write_bytes(pcap)
    out = b""
    records = list(pcapfile.iter_records([path]))
    os.close(fd)
    for _ts, _len, frame in records:
        if frame[12:14] != b"\x08\x00" or frame[23] != 6:  # IPv4, TCP
            continue
        ihl = (frame[14] & 0x0F) * 4
        tcp = frame[14 + ihl:]
        sport, dport = struct.unpack("!HH", tcp[:4])
        if port in (sport, dport):
            out += tcp[(tcp[12] >> 4) * 4:]
    return out


def test_only_admins_turn_the_device_filter_off(tmp_path: Path) -> None:
    with running(tmp_path, {"lo": "lo"}) as d:
        r = _lo_capture(d, "tok-alice", 3, exclude_device_traffic="false")
        assert r.status_code == 403 and "only an admin" in r.json()["msg"]
        r = _lo_capture(d, "tok-alice", 3, exclude_device_traffic="true")
        assert r.status_code == 200 and r.json()["device_filter"]


def test_ssh_key_header_counts_only_on_the_unix_socket(tmp_path: Path) -> None:
    with running(tmp_path) as d:
        r = httpx.get(d.url + "/capabilities", headers={"X-OpenTap-SSH-Key": "tester"}, timeout=10)
        assert r.status_code == 401  # over TCP the header means nothing
        assert invoke(d.conf, "capabilities").returncode == 0
        assert invoke(d.conf, "capabilities", key="nobody-knows").returncode != 0
        sock = Path(d.conf.parent / "opentap.sock")
        assert sock.is_socket() and oct(sock.stat().st_mode & 0o777) == "0o600"
        # another local user is kept out by the socket's mode (and by the daemon's own check of the peer)
        r = subprocess.run(["runuser", "-u", "nobody", "--", sys.executable, "-c",
                            "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])", str(sock)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "Permission denied" in r.stderr


def test_https_with_a_pinned_self_signed_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "opentap.conf"
    port = free_port()
    assert main(["config", "init", "--config", str(conf), "--listen", f"0.0.0.0:{port}"]) == 0
    printed = capsys.readouterr().out
    pin = next(w for w in printed.split() if w.startswith("sha256:"))
    token = (tmp_path / "admin-token").read_text().strip()
    assert oct((tmp_path / "tls.key").stat().st_mode & 0o777) == "0o600"
    d = Daemon(conf, port)
    d.url = f"https://127.0.0.1:{port}"
    d.start(verify=False)
    try:
        with Device(d.url, token=token, verify=pin) as dev:
            assert dev.capabilities()["device"]
        with Device(f"https://localhost:{port}", token=token, verify=str(tmp_path / "tls.crt")) as dev:
            assert dev.capabilities()["device"]  # the certificate as a CA file: host names are checked too
        wrong = "sha256:" + ":".join(["AB"] * 32)
        with Device(d.url, token=token, verify=wrong) as dev, pytest.raises(DeviceError, match="nothing was sent"):
            dev.capabilities()
        with pytest.raises(httpx.TransportError):  # the system's CAs do not know it
            httpx.get(d.url + "/healthz", timeout=5)
        with pytest.raises(httpx.TransportError):  # no plain HTTP on the TLS port
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        env = dict(os.environ, OPENTAP_TOKEN=token, OPENTAP_URL=d.url, OPENTAP_VERIFY=pin)
        for command in (["capabilities", "-f", "json"], ["port-list"]):
            r = subprocess.run([sys.executable, "-m", "opentap", *command], env=env, capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 0, r.stderr
        r = subprocess.run([sys.executable, "-m", "opentap", "capabilities", "--verify", wrong], env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and "not the pinned" in r.stderr
    finally:
        d.stop()
