"""The TaaS API in the tests' hands: objects made through it, bodies poisoned with a lone surrogate, the
error bodies of both route families, everything stored as the admin reads it, and the quota the quota tests set.
Shared by the checks on SQLite (tests/unit) and their reruns on PostgreSQL (tests/system/test_api_postgres.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from opentap.taas.attributes import PORTS, RESOURCES, TAP_FLOWS, TAP_SERVICES, Resource

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

ADMIN, ALICE, READER = ({"X-Auth-Token": t} for t in ("tok-admin", "tok-alice", "tok-alice-reader"))
SURROGATE = "\ud800"
JSON = {"content-type": "application/json"}


def send(api: TestClient, method: str, path: str, body: Any, who: dict[str, str]) -> Any:
    """json.dumps writes a lone surrogate as the escape \\ud800, as an attacker's client would."""
    return api.request(method, path, headers={**who, **JSON}, content=json.dumps(body).encode())


def state(api: TestClient) -> dict[str, Any]:
    """Everything stored, as the admin reads it; each read must succeed."""
    out: dict[str, Any] = {}
    for res in RESOURCES:
        r = api.get(res.path, headers=ADMIN)
        assert r.status_code == 200, r.text
        # without status: the datapath changes it on its own (this tap flow mirrors a port to itself: ERROR)
        out[res.collection] = [{k: v for k, v in o.items() if not k.startswith("status")}
                               for o in r.json()[res.collection]]
    r = api.get("/captures", headers=ADMIN)
    assert r.status_code == 200, r.text
    out["captures"] = r.json()["captures"]
    return out


def neutron_400(r: Any) -> None:
    assert r.status_code == 400, r.text
    assert set(r.json()["NeutronError"]) == {"type", "message", "detail"}


def opentap_error(r: Any, status: int = 400) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "error" and body["msg"], body


def objects(api: TestClient) -> dict[Resource, dict[str, Any]]:
    port = send(api, "POST", PORTS.path, {"port": {"project_id": "alice", "binding:profile": {"interface": "lo"}}},
                ADMIN).json()["port"]
    ts = send(api, "POST", TAP_SERVICES.path, {"tap_service": {"port_id": port["id"]}}, ALICE).json()["tap_service"]
    tf = send(api, "POST", TAP_FLOWS.path, {"tap_flow": {"tap_service_id": ts["id"], "source_port": port["id"],
                                                         "direction": "IN"}}, ALICE).json()["tap_flow"]
    return {PORTS: port, TAP_SERVICES: ts, TAP_FLOWS: tf}


def valid_item(res: Resource, objs: dict[Resource, dict[str, Any]]) -> dict[str, Any]:
    return {PORTS: {"project_id": "alice", "binding:profile": {"interface": "lo"}},
            TAP_SERVICES: {"port_id": objs[PORTS]["id"]},
            TAP_FLOWS: {"tap_service_id": objs[TAP_SERVICES]["id"], "source_port": objs[PORTS]["id"],
                        "direction": "OUT"}}[res]


def poisoned(res: Resource, objs: dict[Resource, dict[str, Any]], put: bool) -> list[dict[str, Any]]:
    """One item per writable attribute with a surrogate in it (in a dict: as a value and as a key), plus one with
    a surrogate as an unknown attribute's name."""
    base = {} if put else valid_item(res, objs)
    items = []
    for attr in res.attrs:
        if not (attr.allow_put if put else attr.allow_post):
            continue
        if attr.name == "binding:profile":
            for bad in ({"interface": SURROGATE}, {"interface": "lo", "x": SURROGATE},
                        {"interface": "lo", SURROGATE: True}):
                items.append({**base, attr.name: bad})
        else:
            items.append({**base, attr.name: SURROGATE})
            items.append({**base, attr.name: [SURROGATE]})
    items.append({**base, SURROGATE: "x"})
    return items


QUOTA = {"tap_service": 2, "tap_flow": 3}
OVER_SERVICE = {"NeutronError": {"type": "OverQuota", "message": "Quota exceeded for resources: ['tap_service'].",
                                 "detail": ""}}


def alice_port(api: Any) -> str:
    r = api.post("/v2.0/ports", headers=ADMIN, json={"port": {"project_id": "alice",
                                                              "binding:profile": {"interface": "lo"}}})
    assert r.status_code == 201, r.text
    return r.json()["port"]["id"]
