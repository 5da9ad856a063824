"""GET /v2.0/agents: this deployment's hosts as Neutron's agents, read-only, admins only (as Neutron's default
policy: anyone else lists none and gets a 404 for each), with Neutron's list parameters; and the config keys
that name a host. Several hosts on one PostgreSQL database: tests/system/test_taas_hosts.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opentap import config

from ..support.configs import write_config

ROLES = {"admin": "tok-admin", "member": "tok-alice", "reader": "tok-alice-reader", "other": "tok-bob"}


@pytest.mark.parametrize("role", list(ROLES))
def test_agents_are_listed_for_admins_only(make_client: Callable[..., TestClient], role: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    api = make_client(host="hv1", tunnel_ip="198.18.10.1")
    assert "the database is SQLite: this device is a deployment of one host" in caplog.text
    h = {"X-Auth-Token": ROLES[role]}
    listed = api.get("/v2.0/agents", headers=h).json()["agents"]
    if role != "admin":
        assert listed == []
        return
    [agent] = listed
    assert {k: agent[k] for k in ("host", "agent_type", "binary", "alive", "admin_state_up")} == {
        "host": "hv1", "agent_type": "OpenTap agent", "binary": "opentap", "alive": True, "admin_state_up": True}
    assert agent["configurations"]["tunnel_ip"] == "198.18.10.1"
    assert agent["configurations"]["shared_database"] is False  # SQLite: this host alone
    assert api.get(f"/v2.0/agents/{agent['id']}", headers=h).json()["agent"] == agent
    assert api.get("/v2.0/agents", headers=h, params={"alive": "false"}).json()["agents"] == []
    assert api.get("/v2.0/agents", headers=h, params={"fields": "host"}).json()["agents"] == [{"host": "hv1"}]


def test_an_agent_is_a_404_for_anyone_but_an_admin_and_cannot_be_changed(make_client) -> None:
    api = make_client()
    admin, member = {"X-Auth-Token": "tok-admin"}, {"X-Auth-Token": "tok-alice"}
    agent = api.get("/v2.0/agents", headers=admin).json()["agents"][0]
    r = api.get(f"/v2.0/agents/{agent['id']}", headers=member)
    assert r.status_code == 404 and r.json()["NeutronError"]["type"] == "AgentNotFound"
    assert api.get("/v2.0/agents/nosuch", headers=admin).status_code == 404
    assert api.put(f"/v2.0/agents/{agent['id']}", headers=admin, json={"agent": {}}).status_code == 405
    assert api.delete(f"/v2.0/agents/{agent['id']}", headers=admin).status_code == 405


def test_the_host_is_device_name_unless_given(tmp_path: Path) -> None:
    cfg = config.load(write_config(tmp_path, device_name="virgo"))
    assert (cfg.host, cfg.tunnel_ip, cfg.agent_down_time) == ("virgo", None, 15)
    for key, value, words in (("host", "a b", "must be a host name"), ("tunnel_ip", "::1", "must be an IPv4"),
                              ("agent_down_time", 0, "greater than 0")):
        with pytest.raises(config.ConfigError, match=words):
            config.load(write_config(tmp_path, **{key: value}))
