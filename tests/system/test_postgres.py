"""The same device on PostgreSQL: migrations, scheduling, a real capture, cancel and delete."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, inspect

from ..support.apicalls import headers, wait_state
from ..support.netns import B_IP
from ..support.postgres import server, unavailable_reason

pytestmark = [pytest.mark.root, pytest.mark.skipif(bool(unavailable_reason()), reason=str(unavailable_reason()))]


@pytest.fixture(scope="module")
def pg_url():
    with server() as url:
        yield url


def test_device_on_postgresql(make_client, lan, pg_url: str) -> None:
    client = make_client(points={"a": lan.ha}, database_url=pg_url)
    tables = inspect(create_engine(pg_url)).get_table_names()
    assert {"captures", "alembic_version"} <= set(tables)
    now = time.time()
    future = client.get("/capture/linkstats", params={"start": now + 600, "stop": now + 660, "id": "later"},
                        headers=headers()).json()
    assert future["state"] == "scheduled"
    r = client.get("/capture/ethernet", params={"start": now, "stop": now + 2, "observationpt": "a",
                                                "filter": "udp"}, headers=headers())
    cid = r.json()["id"]
    wait_state(client, cid, ("running",))
    lan.run(lan.ns_a, "udp", B_IP, 5000, 15, 50)
    cap = wait_state(client, cid, ("complete",))
    assert cap["packets"] == 15 and cap["bytes"] == 15 * (14 + 20 + 8 + 50)
    dup = client.post("/captures", json={"type": "linkstats", "start": now + 600, "stop": now + 660, "id": "later"},
                      headers=headers())
    assert dup.status_code == 409
    assert client.delete("/captures/later", headers=headers()).json()["capture"]["state"] == "cancelled"
    assert client.delete("/captures/later", headers=headers()).status_code == 204
    assert client.delete(f"/captures/{cid}", headers=headers()).status_code == 204
    assert client.get("/captures", headers=headers()).json()["captures"] == []
    # TaaS state on PostgreSQL too: its tables, JSON and boolean columns, a cascade
    assert {"ports", "tap_services", "tap_flows"} <= set(inspect(create_engine(pg_url)).get_table_names())
    port = client.post("/v2.0/ports", headers=headers(), json={"port": {
        "binding:profile": {"interface": "lo"}, "admin_state_up": False}}).json()["port"]
    assert port["binding:profile"] == {"interface": "lo"} and port["admin_state_up"] is False
    ts = client.post("/v2.0/taas/tap_services", headers=headers(), json={"tap_service": {"port_id": port["id"]}})
    assert ts.status_code == 201
    assert client.get("/v2.0/ports", headers=headers(), params={"admin_state_up": "False"}).json()["ports"] == [port]
    assert client.delete(f"/v2.0/ports/{port['id']}", headers=headers()).status_code == 204
    assert client.get("/v2.0/taas/tap_services", headers=headers()).json()["tap_services"] == []
