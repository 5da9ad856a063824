"""The same calls over SSH: `opentap invoke` as a forced command behind a real sshd, its key mapped to a project
and roles by the config, and the client's SSH transport. Nothing the SSH client sends reaches a shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opentap.client.ssh import SshTransport
from opentap.client.transport import DeviceError

from ..support.apicalls import headers
from ..support.daemon import Daemon, running
from ..support.sshd import REASON, Sshd, running_sshd

pytestmark = [pytest.mark.root, pytest.mark.skipif(REASON is not None, reason=REASON or "")]

@pytest.fixture
def device(tmp_path: Path) -> Iterator[Daemon]:
    with running(tmp_path) as d:  # its config maps the SSH key "tester" to alice (member)
        yield d


@pytest.fixture
def sshd(tmp_path: Path, device: Daemon) -> Iterator[Sshd]:
    with running_sshd(tmp_path / "ssh", device.conf) as s:
        yield s


def invoke(device: Daemon, command: str, input: bytes = b"") -> subprocess.CompletedProcess:  # noqa: A002
    """`opentap invoke` as sshd runs a forced command: the client's words only in SSH_ORIGINAL_COMMAND."""
    env = dict(os.environ, SSH_ORIGINAL_COMMAND=command, OPENTAP_CONF=str(device.conf))
    return subprocess.run([sys.executable, "-m", "opentap", "invoke", "--key", "tester"], env=env, input=input,
                          capture_output=True, timeout=60)


def as_alice(device: Daemon, path: str) -> httpx.Response:
    return httpx.get(device.url + path, headers=headers("tok-alice"), timeout=30)


def test_invoke_answers_as_the_api(device: Daemon) -> None:
    """The key acts as alice (member): what alice's token gets, byte for byte, and alice's rights only."""
    r = invoke(device, "capabilities")
    assert r.returncode == 0, r.stderr
    assert r.stdout == as_alice(device, "/capabilities").content
    r = invoke(device, "captures")
    assert r.returncode == 0 and json.loads(r.stdout) == as_alice(device, "/captures").json()
    r = invoke(device, "request GET /v2.0/ports")  # admin-only writes; a member lists only its own ports
    assert r.stdout.startswith(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n")
    r = invoke(device, "request POST /v2.0/ports", input=b'{"port": {"binding:profile": {"interface": "lo"}}}')
    assert r.stdout.startswith(b"HTTP/1.1 403 ")  # a member may not create ports


@pytest.mark.parametrize("command", [
    "capabilities; touch {marker}", "capabilities $(touch {marker})", "capabilities `touch {marker}`",
    "status 'x' && touch {marker}", "retrieve ../../../etc/passwd", "status ../../opentap.conf",
    "request GET http://198.18.0.9/", "request TRACE /", "",
    "capture netflow --duration 1s --filter '; touch {marker}'",
])
def test_nothing_reaches_a_shell(device: Daemon, tmp_path: Path, command: str) -> None:
    marker = tmp_path / "pwned"
    r = invoke(device, command.format(marker=marker))
    assert not marker.exists()
    assert r.returncode != 0, r.stdout
    assert b"Traceback" not in r.stderr, r.stderr


def test_unknown_key_and_bad_signature(device: Daemon) -> None:
    r = subprocess.run([sys.executable, "-m", "opentap", "invoke", "--config", str(device.conf), "--key", "nobody",
                        "capabilities"], capture_output=True, timeout=60)
    assert r.returncode == 2 and b"'nobody' is not in" in r.stderr
    forged = httpx.get(device.url + "/capabilities", headers={"X-Auth-Token": "ssh-key.tester." + "0" * 64})
    assert forged.status_code == 401


def test_over_a_real_sshd(device: Daemon, sshd: Sshd) -> None:
    """`ssh root@device capabilities` runs the forced command; the client's transport does any call."""
    r = sshd.ssh("capabilities")
    assert r.returncode == 0, r.stderr
    assert r.stdout == as_alice(device, "/capabilities").content
    r = sshd.ssh("status", "no-such-capture")
    assert r.returncode == 1 and json.loads(r.stdout)["status"] == "error"
    transport = SshTransport(sshd.url, identity=str(sshd.identity), options=sshd.options())
    with transport.request("GET", "/captures/no-such-capture") as reply:
        assert reply.status == 404 and "no-such-capture" in reply.json()["msg"]
    with transport.request("GET", "/retrieve", params={"id": "no such & capture"}) as reply:  # the query arrives
        assert reply.status == 404 and reply.json()["msg"] == "no capture with id 'no such & capture'"
    with transport.request("GET", "/capabilities", params={"unused": "a b&c"}) as reply:
        assert reply.status == 200 and reply.headers["content-type"] == "application/json"
        assert reply.read() == as_alice(device, "/capabilities").content
    refused = SshTransport(sshd.url, options=sshd.options())  # no identity: the key is not offered
    with pytest.raises(DeviceError, match="cannot run opentap invoke over ssh"), \
            refused.request("GET", "/capabilities"):
        pass
