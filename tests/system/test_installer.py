"""install.sh for real, in a throwaway mount namespace (tests/support/installroot.py): the interview typed
into a pseudo-terminal as an administrator would, start_opentap.sh, the API over HTTPS with the admin token,
a capture, stop_opentap.sh, and a re-run that upgrades and keeps the capture; then --yes, uninstall.sh,
and --answers."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pexpect
import pytest

from opentap.pcap import pcapfile

from ..support.daemon import free_port
from ..support.installroot import REPO, InstallRoot
from ..support.netns import B_IP

pytestmark = pytest.mark.root
INSTALL = str(REPO / "install.sh")


@pytest.fixture
def root(tmp_path: Path) -> Iterator[InstallRoot]:
    r = InstallRoot(tmp_path)
    try:
        yield r
    finally:
        r.close()


class Device:
    """The installed device as a client sees it: HTTPS, the certificate the installer made, its admin token."""

    def __init__(self, root: InstallRoot, port: int) -> None:
        self.root, self.url = root, f"https://127.0.0.1:{port}"
        self.token = root.path("/etc/opentap/admin-token").read_text().strip()
        self.verify = ssl.create_default_context(cafile=str(root.path("/etc/opentap/tls.crt")))

    def get(self, path: str, **params: object) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers={"X-Auth-Token": self.token}, verify=self.verify,
                         timeout=30)

    def wait(self, cid: str, states: tuple[str, ...], timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while (cap := self.get(f"/captures/{cid}").json()["capture"])["state"] not in states:
            assert time.monotonic() < deadline, cap
            time.sleep(0.1)
        return cap


def start(root: InstallRoot) -> None:
    out = root.run("/opt/opentap/bin/start_opentap.sh", check=False)
    log = root.path("/var/log/opentap/opentap.log")
    assert "OpenTap started" in out.stdout, out.stdout + out.stderr + (log.read_text() if log.exists() else "")


def stop(root: InstallRoot) -> None:
    out = root.run("/opt/opentap/bin/stop_opentap.sh")
    assert "OpenTap stopped" in out.stdout, out.stdout + out.stderr
    assert root.processes() == []  # neither the daemon nor a tcpdump is left


def records(dev: Device, cid: str, tmp: Path) -> int:
    path = tmp / f"{cid}.pcap"
    path.write_bytes(dev.get("/retrieve", id=cid).content)
    return pcapfile.count([path]).packets


def capture(dev: Device, lan, point: str) -> str:
    now = time.time()
    r = dev.get("/capture/ethernet", start=now, stop=now + 3, observationpt=point, filter="udp")
    assert r.status_code == 200, r.text
    cid = r.json()["id"]
    dev.wait(cid, ("running",))
    lan.run(lan.ns_a, "udp", B_IP, 5000, 7, 10)
    assert dev.wait(cid, ("complete", "truncated", "failed"))["state"] == "complete"
    assert records(dev, cid, dev.root.work) == 7
    return cid


def answer_points(child: pexpect.spawn, names: dict[str, str]) -> None:
    """Answer each interface's question: the test's names, '-' (not a point) for whatever else this host has."""
    while child.expect([r"  (\S+): observation point name \[(\S*)\]: ", r"Default observation point"]) == 0:
        child.sendline(names.get(child.match.group(1), "-"))


def test_interactive_install_capture_stop_and_upgrade(root: InstallRoot, lan) -> None:
    port = free_port()
    child = root.spawn(INSTALL)  # Ctrl-C in the middle of the interview: nothing is written
    child.expect(r"Device name \[\S+\]: ", timeout=600)
    child.sendline("tap-lab")
    child.expect(r"Listen on .*\[0\.0\.0\.0:2020\]: ")
    child.sendintr()
    child.expect("installed in /opt/opentap but not configured")
    child.expect(pexpect.EOF)
    assert not root.path("/etc/opentap/opentap.conf").exists() and not root.path("/etc/opentap/admin-token").exists()

    child = root.spawn(INSTALL)
    child.expect(r"Device name \[\S+\]: ", timeout=600)
    child.sendline("tap-lab")
    child.expect(r"Listen on .*\[0\.0\.0\.0:2020\]: ")
    child.sendline("0.0.0.0:99999")  # a bad answer: explained, and asked again
    child.expect("port must be 1-65535")
    child.expect(r"Listen on .*: ")
    child.sendline(f"0.0.0.0:{port}")
    child.expect(r"TLS: .*\[generate\]: ")
    child.sendline("")
    child.expect(lan.ha)  # the interface table shows the test's link
    answer_points(child, {lan.ha: "webapp", lan.hb: "lab"})
    child.expect(r"\[webapp\]: ")
    child.sendline("")
    for question in ("Keep finished captures", "Longest capture window", "Disk quota", "Captures at the same time",
                     r"Look for sensors .*\[no\]"):
        child.expect(question)
        child.sendline("")
    child.expect(r"Admin token \(shown this once.*\):\r\n  (\S+)\r\n")
    token = child.match.group(1)
    child.expect(r"Device\(\"https://\S+\", token=\"\S+\", verify=\"sha256:[0-9A-F:]+\"\)")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before

    out = root.run("systemd-analyze", "verify", "/etc/systemd/system/opentap.service")
    assert out.stderr == "", out.stderr
    start(root)
    dev = Device(root, port)
    assert dev.token == token
    caps = dev.get("/capabilities").json()
    assert caps["device"] == "tap-lab" and {"webapp", "lab"} <= set(caps["network_observation_pts"])
    cid = capture(dev, lan, "webapp")
    stop(root)

    out = root.run(INSTALL)  # an upgrade: no question, everything kept
    assert "Device name" not in out.stdout and "captures kept: 1 complete" in out.stdout, out.stdout
    start(root)
    assert dev.get(f"/captures/{cid}").json()["capture"]["packets"] == 7
    assert records(dev, cid, root.work) == 7
    stop(root)


def test_yes_then_uninstall_then_answers(root: InstallRoot, lan, tmp_path: Path) -> None:
    """--yes takes every default; uninstall.sh keeps config and data, --purge removes them; --answers then
    installs afresh from a file."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 2020)) == 0:
            pytest.skip("port 2020, the default, is taken on this host")
    out = root.run(INSTALL, "--yes")
    assert "Admin token" in out.stdout and "Device name" not in out.stdout, out.stdout
    conf = root.path("/etc/opentap/opentap.conf").read_text()
    assert f'{lan.ha} = "{lan.ha}"' in conf and "lo = " not in conf and 'capture_user = "opentap"' in conf
    start(root)
    try:
        capture(Device(root, 2020), lan, lan.ha)
    finally:
        stop(root)

    out = root.run(str(REPO / "uninstall.sh"))
    assert not root.path("/opt/opentap").exists() and not root.path("/usr/local/bin/opentap").exists()
    assert not root.path("/etc/systemd/system/opentap.service").exists()
    assert root.path("/etc/opentap/opentap.conf").exists() and root.path("/var/lib/opentap/opentap.db").exists()
    root.run(str(REPO / "uninstall.sh"), "--purge")
    assert not root.path("/etc/opentap").exists() and not root.path("/var/lib/opentap").exists()
    assert root.run("getent", "passwd", "opentap", check=False).returncode == 2

    port = free_port()
    answers = tmp_path / "answers.toml"
    answers.write_text(f'device_name = "tap-auto"\nlisten = "0.0.0.0:{port}"\nretention_minutes = 30\n'
                       f'default_point = "mirror"\n\n[points]\n{lan.ha} = "mirror"\n')
    out = root.run(INSTALL, "--answers", str(answers))
    assert "Device name" not in out.stdout and "tap-auto" in out.stdout, out.stdout
    start(root)
    try:
        dev = Device(root, port)
        caps = dev.get("/capabilities").json()
        assert caps["device"] == "tap-auto" and caps["retention_minutes"] == 30
        assert caps["default_observation_point"] == "mirror"
        capture(dev, lan, "mirror")
    finally:
        stop(root)
