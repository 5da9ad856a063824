"""The real OpenStack clients, unchanged, against the device as a real process: openstacksdk's network proxy and
the `openstack tap service|flow` commands. Those commands are python-openstackclient's own since 8.3.0 (before,
tap-as-a-service shipped them as an OSC plugin that requires neutron; its 18.0.0 no longer does)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from ..support.daemon import Daemon, running

openstack = pytest.importorskip("openstack", reason="openstacksdk is not installed (pip install -e '.[test]')")
exceptions = openstack.exceptions
DiscoveryFailure = pytest.importorskip("keystoneauth1.exceptions").DiscoveryFailure  # openstacksdk needs it

# The SDK warns about its own deprecations (influxdb, service_type, ...): nothing the device can act on.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]

OSC = shutil.which("openstack", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
OSC_TAAS = any(ep.name == "tap_service_create" for ep in entry_points(group="openstack.network.v2.taas"))
needs_osc = pytest.mark.skipif(not (OSC and OSC_TAAS), reason="the `openstack` CLI with `tap service` commands "
                               "(python-openstackclient>=8.3) is not installed (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with running(tmp_path_factory.mktemp("osclients")) as d:
        yield d


def network(device: Daemon, token: str) -> Any:
    """The documented form, exactly: the admin_token plugin with the versioned endpoint; nothing else is needed
    (the SDK does no version discovery with it, and given the bare device URL it would append /v2.0 itself)."""
    return openstack.connect(auth_type="admin_token", auth={"endpoint": device.url + "/v2.0", "token": token}).network


def but_status(obj: dict[str, Any]) -> dict[str, Any]:
    """Without the status and its reason, which the datapath changes after a create (a tap service on lo turns
    ACTIVE)."""
    return {k: v for k, v in obj.items() if k.lower() not in ("status", "status_reason")}


def alice_port(device: Daemon, name: str) -> Any:
    return network(device, "tok-admin").create_port(project_id="alice", name=name, binding_profile={"interface": "lo"})


def test_sdk_tap_service_life_cycle(device: Daemon) -> None:
    net, mon = network(device, "tok-alice"), alice_port(device, "sdk-mon")
    assert (mon.project_id, mon.binding_profile, mon.status) == ("alice", {"interface": "lo"}, "ACTIVE")
    ts = net.create_tap_service(name="sdk-ts", description="watch", port_id=mon.id)
    assert (ts.name, ts.description, ts.port_id, ts.project_id, ts.status) == (
        "sdk-ts", "watch", mon.id, "alice", "DOWN")
    assert ts.to_dict(computed=False)["tenant_id"] == "alice"
    assert but_status(net.get_tap_service(ts.id).to_dict()) == but_status(ts.to_dict())
    assert net.find_tap_service("sdk-ts").id == net.find_tap_service(ts.id).id == ts.id
    changed = net.update_tap_service(ts, name="sdk-ts2", description="")
    assert (changed.id, changed.name, changed.description, changed.port_id) == (ts.id, "sdk-ts2", "", mon.id)
    assert net.get_tap_service(ts.id).name == "sdk-ts2"
    more = [net.create_tap_service(name=f"sdk-page{i}", port_id=mon.id) for i in range(3)]
    everything = [s.id for s in net.tap_services()]
    assert {ts.id, *(s.id for s in more)} <= set(everything)
    assert [s.id for s in net.tap_services(limit=1)] == everything  # the SDK follows tap_services_links
    assert [s.id for s in net.tap_services(name="sdk-ts2")] == [ts.id]
    for s in [ts, *more]:
        assert net.delete_tap_service(s) is None
    with pytest.raises(exceptions.NotFoundException, match="Tap Service  .* does not exist"):
        net.get_tap_service(ts.id)
    assert net.find_tap_service("sdk-ts2") is None and net.delete_tap_service(ts, ignore_missing=True) is None
    with pytest.raises(exceptions.ResourceNotFound):
        net.find_tap_service(ts.id, ignore_missing=False)
    with pytest.raises(exceptions.NotFoundException):
        net.delete_tap_service(ts.id, ignore_missing=False)


def test_sdk_tap_flow_life_cycle(device: Daemon) -> None:
    net = network(device, "tok-alice")
    mon, src = alice_port(device, "sdk-fmon"), alice_port(device, "sdk-fsrc")
    ts = net.create_tap_service(name="sdk-fts", port_id=mon.id)
    tf = net.create_tap_flow(name="sdk-tf", tap_service_id=ts.id, source_port=src.id, direction="IN",
                             vlan_filter="9,18-27")
    assert (tf.name, tf.tap_service_id, tf.source_port, tf.direction, tf.status, tf.project_id) == (
        "sdk-tf", ts.id, src.id, "IN", "DOWN", "alice")
    assert tf.to_dict(computed=False)["vlan_filter"] == "9,18-27"  # not an SDK attribute: kept as unknown
    assert but_status(net.get_tap_flow(tf.id).to_dict()) == but_status(tf.to_dict())
    assert net.find_tap_flow("sdk-tf").id == net.find_tap_flow(tf.id).id == tf.id
    assert net.update_tap_flow(tf, name="sdk-tf2").name == "sdk-tf2"
    assert [(f.id, f.name) for f in net.tap_flows() if f.tap_service_id == ts.id] == [(tf.id, "sdk-tf2")]
    net.delete_tap_flow(tf)
    with pytest.raises(exceptions.NotFoundException, match="Tap Flow  .* does not exist"):
        net.get_tap_flow(tf.id)
    again = net.create_tap_flow(tap_service_id=ts.id, source_port=src.id, direction="BOTH")
    net.delete_tap_service(ts)  # takes its tap flows with it
    assert net.find_tap_flow(again.id) is None


def test_sdk_errors_are_neutrons(device: Daemon) -> None:
    mon = alice_port(device, "sdk-emon")
    ts = network(device, "tok-alice").create_tap_service(port_id=mon.id)
    with pytest.raises(exceptions.NotFoundException):  # another project's tap service does not exist for bob
        network(device, "tok-bob").get_tap_service(ts.id)
    with pytest.raises(exceptions.ForbiddenException, match="rule:create_tap_service is disallowed by policy"):
        network(device, "tok-alice-reader").create_tap_service(port_id=mon.id)
    with pytest.raises(exceptions.BadRequestException, match="'SIDEWAYS' is not in"):
        network(device, "tok-alice").create_tap_flow(tap_service_id=ts.id, source_port=mon.id, direction="SIDEWAYS")
    with pytest.raises(exceptions.HttpException) as err:
        list(network(device, "tok-nobody").tap_services())
    assert err.value.status_code == 401


@pytest.fixture(scope="module")
def open_device(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with running(tmp_path_factory.mktemp("osclients-noauth"), auth="none") as d:
        yield d


def test_sdk_admin_token_on_a_device_without_auth(open_device: Daemon) -> None:
    """Against `auth = "none"` the admin_token plugin works with any token: everyone is the admin of "default"."""
    net = network(open_device, "anything")
    port = net.create_port(name="open", binding_profile={"interface": "lo"})
    ts = net.create_tap_service(name="open-ts", port_id=port.id)
    assert (ts.project_id, ts.status, [s.id for s in net.tap_services()]) == ("default", "DOWN", [ts.id])


@pytest.mark.parametrize("suffix", ["", "/v2.0"])  # keystoneauth discovers the version at either
def test_sdk_auth_none_with_an_endpoint_override(open_device: Daemon, suffix: str) -> None:
    net = openstack.connect(auth_type="none", network_endpoint_override=open_device.url + suffix).network
    port = net.create_port(name=f"none{suffix}", binding_profile={"interface": "lo"})
    ts = net.create_tap_service(name=f"ts-none{suffix}", port_id=port.id)
    assert net.get_tap_service(ts.id).port_id == port.id and ts.id in {s.id for s in net.tap_services()}


def osc(device: Daemon, *args: str, token: str = "tok-alice", ok: bool = True) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(OS_AUTH_TYPE="admin_token", OS_ENDPOINT=device.url + "/v2.0", OS_TOKEN=token)
    done = subprocess.run([str(OSC), *args], capture_output=True, text=True, env=env, timeout=120)
    assert (done.returncode == 0) == ok, f"openstack {' '.join(args)}: {done.returncode}\n{done.stdout}{done.stderr}"
    return json.loads(done.stdout) if ok and "-f" in args else done.stdout + done.stderr


@needs_osc
def test_openstack_cli_tap_service_and_flow(device: Daemon) -> None:
    mon, src = alice_port(device, "cli-mon"), alice_port(device, "cli-src")
    ts = osc(device, "tap", "service", "create", "--name", "cli-ts", "--description", "d", "--port", "cli-mon",
             "-f", "json")
    assert {k: ts[k] for k in ("name", "description", "port_id", "project_id", "status")} == {
        "name": "cli-ts", "description": "d", "port_id": mon.id, "project_id": "alice", "status": "DOWN"}
    listed = {row["ID"]: row for row in osc(device, "tap", "service", "list", "-f", "json")}
    assert but_status(listed[ts["id"]]) == {"ID": ts["id"], "Tenant": "alice", "Name": "cli-ts", "Port": mon.id}
    assert but_status(osc(device, "tap", "service", "show", "cli-ts", "-f", "json")) == but_status(ts)
    renamed = osc(device, "tap", "service", "update", ts["id"], "--name", "cli-ts2", "-f", "json")
    assert but_status(renamed) == but_status({**ts, "name": "cli-ts2"})
    tf = osc(device, "tap", "flow", "create", "--name", "cli-tf", "--port", src.id, "--tap-service", "cli-ts2",
             "--direction", "both", "--vlan-filter", "9,18-27", "-f", "json")
    assert {k: tf[k] for k in ("tap_service_id", "source_port", "direction", "status", "vlan_filter")} == {
        "tap_service_id": ts["id"], "source_port": src.id, "direction": "BOTH", "status": "DOWN",
        "vlan_filter": "9,18-27"}
    assert [r["ID"] for r in osc(device, "tap", "flow", "list", "-f", "json") if r["tap_service_id"] == ts["id"]] == [
        tf["id"]]
    assert but_status(osc(device, "tap", "flow", "show", "cli-tf", "-f", "json")) == but_status(tf)
    # OSC prints an updated tap flow under its list headings ("Name", "ID"): the client's own way
    assert osc(device, "tap", "flow", "update", "cli-tf", "--name", "cli-tf2", "-f", "json")["Name"] == "cli-tf2"
    osc(device, "tap", "flow", "delete", "cli-tf2")
    osc(device, "tap", "service", "delete", "cli-ts2")
    assert "No TapService found for cli-ts2" in osc(device, "tap", "service", "show", "cli-ts2", ok=False)
    assert "rule:create_tap_service is disallowed by policy" in osc(
        device, "tap", "service", "create", "--port", mon.id, token="tok-alice-reader", ok=False)
