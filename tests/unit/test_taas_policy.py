"""The policy matrix: admin, member, reader of the owning project, and a member of another project, against
every operation on each resource. Expected: upstream's default policies, with another project's objects not
existing (404) rather than forbidden."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from opentap.taas.attributes import PORTS, RESOURCES, TAP_FLOWS, TAP_SERVICES, Resource

ROLES = {"admin": "tok-admin", "member": "tok-alice", "reader": "tok-alice-reader", "other": "tok-bob"}
WRITES = {  # resource -> roles allowed to create, update and delete (on alice's objects)
    PORTS: {"admin"},
    TAP_SERVICES: {"admin", "member"},
    TAP_FLOWS: {"admin", "member"},
}


def make(api: TestClient) -> dict[Resource, dict]:
    """alice's port, tap service and tap flow (made by the admin)."""
    h = {"X-Auth-Token": "tok-admin"}
    port = api.post(PORTS.path, headers=h, json={"port": {"project_id": "alice",
                                                           "binding:profile": {"interface": "lo"}}}).json()["port"]
    ts = api.post(TAP_SERVICES.path, headers=h, json={"tap_service": {"project_id": "alice",
                                                                      "port_id": port["id"]}}).json()["tap_service"]
    tf = api.post(TAP_FLOWS.path, headers=h, json={"tap_flow": {
        "project_id": "alice", "tap_service_id": ts["id"], "source_port": port["id"], "direction": "IN"}}).json()
    return {PORTS: port, TAP_SERVICES: ts, TAP_FLOWS: tf["tap_flow"]}


def create_body(res: Resource, objs: dict[Resource, dict]) -> dict:
    port, ts = objs[PORTS]["id"], objs[TAP_SERVICES]["id"]
    return {PORTS: {"binding:profile": {"interface": "lo"}}, TAP_SERVICES: {"port_id": port},
            TAP_FLOWS: {"tap_service_id": ts, "source_port": port, "direction": "OUT"}}[res]


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.collection)
def test_matrix(make_client: Callable[..., TestClient], res: Resource, role: str) -> None:
    api = make_client()
    objs = make(api)
    h = {"X-Auth-Token": ROLES[role]}
    own = role != "other"
    url = f"{res.path}/{objs[res]['id']}"
    listed = [o["id"] for o in api.get(res.path, headers=h).json()[res.collection]]
    assert listed == ([objs[res]["id"]] if own else [])
    assert api.get(url, headers=h).status_code == (200 if own else 404)
    allowed = role in WRITES[res]
    # an admin creating for alice names the project (unnamed, it is the admin's own, where alice's ports are not)
    body = {res.member: create_body(res, objs) | ({"project_id": "alice"} if role == "admin" else {})}
    r = api.post(res.path, headers=h, json=body)
    # another project's member may create in its own project, but alice's port and tap service are not there
    expected_create = 201 if allowed else 404 if role == "other" and res is not PORTS else 403
    assert r.status_code == expected_create, r.text
    if res is not PORTS:
        r = api.put(url, headers=h, json={res.member: {"name": "x"}})
        assert r.status_code == (200 if allowed and own else 404 if not own else 403), r.text
    r = api.delete(url, headers=h)
    assert r.status_code == (204 if allowed and own else 404 if not own else 403), r.text
