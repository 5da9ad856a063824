"""The API boundary and the TaaS quotas on PostgreSQL, which refuses what SQLite stores (a NUL in text): hostile
input is still a 400 and never a 500, and the quota table (its `limit` column is an SQL keyword) works."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from ..support.postgres import server, unavailable_reason
from ..support.taasapi import (
    ADMIN,
    ALICE,
    OVER_SERVICE,
    QUOTA,
    alice_port,
    neutron_400,
    objects,
    opentap_error,
    poisoned,
    send,
    state,
)

pytestmark = [pytest.mark.root, pytest.mark.skipif(bool(unavailable_reason()), reason=str(unavailable_reason()))]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with server() as url:
        yield url


@pytest.fixture
def api(make_client: Callable[..., TestClient], pg_url: str) -> Iterator[TestClient]:
    client = make_client(database_url=pg_url, taas_quota=QUOTA)
    yield client
    for path in ("/v2.0/ports",):  # the database outlives the test: leave it empty (ports take the rest along)
        for obj in client.get(path, headers=ADMIN).json()["ports"]:
            client.delete(f"{path}/{obj['id']}", headers=ADMIN)
    client.delete("/v2.0/quotas/alice", headers=ADMIN)


def test_hostile_input_is_a_400_on_postgresql(api: TestClient) -> None:
    objs = objects(api)
    before = state(api)
    for res, obj in objs.items():
        who = ADMIN if res.collection == "ports" else ALICE
        for item in poisoned(res, objs, put=True):
            neutron_400(send(api, "PUT", f"{res.path}/{obj['id']}", {res.member: item}, who))
        neutron_400(send(api, "PUT", f"{res.path}/{obj['id']}", {res.member: {"name": "a\x00b"}}, who))
        neutron_400(api.get(f"{res.path}/%00", headers=ADMIN))
    opentap_error(api.get("/captures/a%00b", headers=ALICE))
    opentap_error(send(api, "POST", "/captures", {"type": "ethernet", "start": 1, "stop": 2, "id": "a\x00"}, ALICE))
    assert state(api) == before


def test_quotas_on_postgresql(api: TestClient) -> None:
    port = alice_port(api)
    r = api.put("/v2.0/quotas/alice", headers=ADMIN, json={"quota": {"tap_service": 1}})
    assert r.status_code == 200 and r.json() == {"quota": {**QUOTA, "tap_service": 1}}, r.text
    one = {"tap_service": {"port_id": port}}
    assert api.post("/v2.0/taas/tap_services", headers=ALICE, json=one).status_code == 201
    over = api.post("/v2.0/taas/tap_services", headers=ALICE, json=one)
    assert over.status_code == 409 and over.json() == OVER_SERVICE
    assert api.get("/v2.0/quotas", headers=ADMIN).json()["quotas"][0]["tap_service"] == 1
    assert api.delete("/v2.0/quotas/alice", headers=ADMIN).status_code == 204


def test_port_revisions_and_known_projects_on_postgresql(api: TestClient) -> None:
    """The port update's compare and swap (its rowcount) and the owners' query behind /v2.0/tenants."""
    port_id = alice_port(api)
    url = f"/v2.0/ports/{port_id}"
    r = api.put(url, headers={**ADMIN, "If-Match": "revision_number=1"}, json={"port": {"name": "pg"}})
    assert r.status_code == 200 and r.json()["port"]["revision_number"] == 2
    r = api.put(url, headers={**ADMIN, "If-Match": "revision_number=1"}, json={"port": {"name": "pg2"}})
    assert r.status_code == 412, r.text
    r = api.post("/v2.0/ports", headers=ADMIN, json={"port": {"project_id": "carol",
                                                              "binding:profile": {"interface": "lo"}}})
    assert r.status_code == 201
    assert [t["id"] for t in api.get("/v2.0/tenants", headers=ADMIN).json()["tenants"]] == [
        "admin", "alice", "bob", "carol"]
