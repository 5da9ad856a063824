"""GET /capabilities and GET /captures answer from what was read since the last commit (api/commitcache.py):
every committed write shows at once (TaaS creates, renames, deletes and a port's cascade; captures scheduled,
started by the engine, cancelled, deleted), a rolled-back one changes nothing, and answers are per caller. A
token created while the device runs (`opentap token create`) works at once: the (async) auth dependency
rereads the config when it changes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from opentap import configwrite

from ..support.apicalls import headers, wait_state
from .test_taas_api import ADMIN, ALICE, BOB, PORTS, SERVICES, port, service


def names(api: TestClient, who: dict) -> set[str]:
    r = api.get("/capabilities", headers=who)
    assert r.status_code == 200, r.text
    return set(r.json()["network_observation_pts"])


def test_capabilities_follow_every_taas_write(make_client: Callable[..., TestClient]) -> None:
    api = make_client()
    assert names(api, ALICE) == {"lo"}  # read (and cached) before any tap service exists
    p = port(api)
    ts = service(api, p["id"], name="mon")
    assert names(api, ALICE) == {"lo", "mon"}  # a tap service is listed once, by its name
    assert names(api, BOB) == {"lo"}  # another project's cache entry
    assert api.put(f"{SERVICES}/{ts['id']}", headers=ALICE, json={"tap_service": {"name": "mon2"}}).status_code == 200
    assert names(api, ALICE) == {"lo", "mon2"}
    assert names(api, ADMIN) >= {"mon2"}
    bulk = [{"port_id": p["id"], "name": "half"}, {"port_id": str(uuid.uuid4())}]  # the first is rolled back
    r = api.post(SERVICES, headers=ALICE, json={"tap_services": bulk})
    assert r.status_code == 404, r.text
    assert names(api, ALICE) == {"lo", "mon2"}
    assert api.delete(f"{SERVICES}/{ts['id']}", headers=ALICE).status_code == 204
    assert names(api, ALICE) == {"lo"}
    ts2 = service(api, port(api)["id"], name="again")
    assert names(api, ALICE) == {"lo", "again"}
    assert api.delete(f"{PORTS}/{ts2['port_id']}", headers=ADMIN).status_code == 204  # takes its tap service
    assert names(api, ALICE) == {"lo"}


def listed(api: TestClient, token: str = "tok-admin", **params: str) -> dict[str, str]:
    r = api.get("/captures", headers=headers(token), params=params)
    assert r.status_code == 200, r.text
    return {c["id"]: c["state"] for c in r.json()["captures"]}


def test_capture_list_follows_every_commit(make_client: Callable[..., TestClient]) -> None:
    api = make_client()
    assert listed(api) == {} and listed(api, "tok-bob") == {}
    now = time.time()
    later = api.post("/captures", headers=headers("tok-alice"),
                     json={"type": "linkstats", "start": now + 3600, "stop": now + 3610})
    soon = api.post("/captures", headers=headers("tok-bob"), json={"type": "linkstats", "start": now + 0.5,
                                                                   "stop": now + 30, "period": 100})
    assert later.status_code == soon.status_code == 201, (later.text, soon.text)
    a, b = later.json()["id"], soon.json()["id"]
    assert listed(api) == {a: "scheduled", b: "scheduled"}
    assert listed(api, "tok-bob") == {b: "scheduled"} and listed(api, "tok-alice") == {a: "scheduled"}
    wait_state(api, b, ("running",))  # the engine thread starts it and commits
    assert listed(api) == {a: "scheduled", b: "running"} and listed(api, state="running") == {b: "running"}
    assert api.delete(f"/captures/{b}", headers=headers()).status_code == 200  # cancelled, kept
    assert listed(api, "tok-bob") == {b: "cancelled"} and listed(api, state="running") == {}
    assert api.delete(f"/captures/{b}", headers=headers()).status_code == 204  # deleted
    assert listed(api) == {a: "scheduled"} and listed(api, "tok-bob") == {}


def test_new_token_works_without_a_restart(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    api = make_client()
    assert api.get("/capabilities", headers=headers()).status_code == 200
    token = configwrite.create_token(tmp_path / "opentap.conf", "carol", ["reader"])
    r = api.get("/capabilities", headers={"X-Auth-Token": token})
    assert r.status_code == 200 and r.json()["project"] == "carol", r.text
    assert listed(api, token) == {}
