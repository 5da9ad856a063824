"""`opentap tap-service-*`, `tap-flow-*` and `port-*` against a live daemon, as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support.daemon import Daemon, running


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with running(tmp_path_factory.mktemp("cli")) as d:
        yield d


def cli(device: Daemon, *args: str, token: str = "tok-alice", ok: bool = True) -> str:
    env = dict(os.environ, OPENTAP_URL=device.url, OPENTAP_TOKEN=token)
    done = subprocess.run([sys.executable, "-m", "opentap", *args], capture_output=True, text=True, env=env,
                          timeout=60)
    assert (done.returncode == 0) == ok, done.stdout + done.stderr
    return done.stdout if ok else done.stderr


def test_the_workflow_by_names(device: Daemon, tmp_path: Path) -> None:
    for name, iface in (("monitor", "lo"), ("web", "eth9")):
        made = json.loads(cli(device, "port-create", "--name", name, "--project-id", "alice",
                              "--binding-profile", json.dumps({"interface": iface}), "-f", "json", token="tok-admin"))
        assert made["name"] == name and made["port_security_enabled"] is True
    # a boolean option is command-line text; the CLI sends it as the JSON boolean the API requires
    off = json.loads(cli(device, "port-create", "--name", "off", "--admin-state-up", "false", "--binding-profile",
                         json.dumps({"interface": "lo"}), "-f", "json", token="tok-admin"))
    assert off["admin_state_up"] is False
    assert "must be true or false" in cli(device, "port-create", "--admin-state-up", "maybe", "--binding-profile",
                                          json.dumps({"interface": "lo"}), token="tok-admin", ok=False)
    cli(device, "port-delete", off["id"], token="tok-admin")
    ts = json.loads(cli(device, "tap-service-create", "--name", "ts1", "--port", "monitor", "-f", "json"))
    assert ts["status"] == "DOWN" and ts["project_id"] == "alice"
    tf = json.loads(cli(device, "tap-flow-create", "--name", "tf1", "--tap-service", "ts1", "--source-port", "web",
                        "--direction", "IN", "--vlan-filter", "10-20", "-f", "json"))
    assert (tf["tap_service_id"], tf["direction"], tf["vlan_filter"]) == (ts["id"], "IN", "10-20")
    table = cli(device, "tap-flow-list")
    assert "| tf1 " in table and tf["id"] in table and table.startswith("+")
    rows = list(csv.DictReader(io.StringIO(cli(device, "tap-service-list", "-f", "csv"))))
    assert [(r["id"], r["name"]) for r in rows] == [(ts["id"], "ts1")]
    assert cli(device, "tap-service-show", "ts1", "-f", "value").split("\n")[0].startswith("id ")
    assert "name: \"renamed\"" in cli(device, "tap-service-update", "ts1", "--name", "renamed", "-f", "yaml")
    assert cli(device, "tap-service-delete", "renamed").startswith("Deleted tap_service")
    assert json.loads(cli(device, "tap-flow-list", "-f", "json")) == []


def test_errors_are_clear(device: Daemon) -> None:
    assert "No tap_service found for 'nope'" in cli(device, "tap-service-show", "nope", ok=False)
    assert "PolicyNotAuthorized" in cli(device, "port-create", "--binding-profile", '{"interface": "lo"}',
                                        ok=False)
    err = cli(device, "tap-flow-create", "--tap-service", "x", "--source-port", "y", "--direction", "UP", ok=False)
    assert "No tap_service found for 'x'" in err
    env = dict(os.environ, OPENTAP_URL="http://127.0.0.1:9", OPENTAP_TOKEN="t")
    done = subprocess.run([sys.executable, "-m", "opentap", "tap-service-list"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 2 and "cannot reach the device at http://127.0.0.1:9" in done.stderr
