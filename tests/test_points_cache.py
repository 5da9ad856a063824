"""GET /capabilities serves the callers' tap services from the TaaS store's cache: every committed write
(create, rename, delete, a port's cascade) shows at once, a failed write changes nothing, and the cache is kept
per project."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient

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
    assert names(api, ALICE) == {"lo", "mon", ts["id"]}
    assert names(api, BOB) == {"lo"}  # another project's cache entry
    assert api.put(f"{SERVICES}/{ts['id']}", headers=ALICE, json={"tap_service": {"name": "mon2"}}).status_code == 200
    assert names(api, ALICE) == {"lo", "mon2", ts["id"]}
    assert names(api, ADMIN) >= {"mon2", ts["id"]}
    bulk = [{"port_id": p["id"], "name": "half"}, {"port_id": str(uuid.uuid4())}]  # the first is rolled back
    r = api.post(SERVICES, headers=ALICE, json={"tap_services": bulk})
    assert r.status_code == 404, r.text
    assert names(api, ALICE) == {"lo", "mon2", ts["id"]}
    assert api.delete(f"{SERVICES}/{ts['id']}", headers=ALICE).status_code == 204
    assert names(api, ALICE) == {"lo"}
    ts2 = service(api, port(api)["id"], name="again")
    assert names(api, ALICE) == {"lo", "again", ts2["id"]}
    assert api.delete(f"{PORTS}/{ts2['port_id']}", headers=ADMIN).status_code == 204  # takes its tap service
    assert names(api, ALICE) == {"lo"}
