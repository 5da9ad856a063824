"""The Neutron-compatible TaaS API: envelopes, status codes, NeutronError bodies, policy, cascades, queries."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

ADMIN, ALICE, READER, BOB = ({"X-Auth-Token": t} for t in ("tok-admin", "tok-alice", "tok-alice-reader", "tok-bob"))
PORTS, SERVICES, FLOWS = "/v2.0/ports", "/v2.0/taas/tap_services", "/v2.0/taas/tap_flows"


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def port(api: TestClient, project: str = "alice", iface: str = "lo", **extra: object) -> dict:
    r = api.post(PORTS, headers=ADMIN, json={"port": {"project_id": project, "name": f"p-{iface}",
                                                      "binding:profile": {"interface": iface}, **extra}})
    assert r.status_code == 201, r.text
    return r.json()["port"]


def service(api: TestClient, port_id: str, who: dict = ALICE, **extra: object) -> dict:
    r = api.post(SERVICES, headers=who, json={"tap_service": {"port_id": port_id, **extra}})
    assert r.status_code == 201, r.text
    return r.json()["tap_service"]


def flow(api: TestClient, service_id: str, source: str, who: dict = ALICE, **extra: object) -> dict:
    r = api.post(FLOWS, headers=who, json={"tap_flow": {"tap_service_id": service_id, "source_port": source,
                                                        "direction": "BOTH", **extra}})
    assert r.status_code == 201, r.text
    return r.json()["tap_flow"]


def error(r, status: int, kind: str, words: str = "") -> None:  # noqa: ANN001
    assert r.status_code == status, r.text
    body = r.json()["NeutronError"]
    assert body["type"] == kind and words in body["message"] and body["detail"] == "", body


def test_ports_read_the_interface(api: TestClient) -> None:
    p = port(api)
    assert p["mac_address"] == "00:00:00:00:00:00" and p["status"] == "ACTIVE"  # lo: up, all-zero MAC
    assert p["project_id"] == p["tenant_id"] == "alice" and p["port_security_enabled"] is True
    missing = port(api, iface="nosuchif0")
    assert missing["status"] == "DOWN" and missing["mac_address"] == ""
    assert api.get(f"{PORTS}/{p['id']}", headers=ALICE).json()["port"] == p
    error(api.post(PORTS, headers=ALICE, json={"port": {"binding:profile": {"interface": "lo"}}}),
          403, "PolicyNotAuthorized", "rule:create_port is disallowed by policy")


def test_tap_service_and_flow_life_cycle(api: TestClient) -> None:
    mon, src = port(api, iface="lo"), port(api, iface="eth9")
    ts = service(api, mon["id"], name="Test", description="Test_Tap")
    assert ts["status"] == "DOWN" and ts["tenant_id"] == ts["project_id"] == "alice" and "tap_id" not in ts
    tf = flow(api, ts["id"], src["id"], name="flow1", vlan_filter="9,18-27")
    assert (tf["direction"], tf["vlan_filter"], tf["status"]) == ("BOTH", "9,18-27", "DOWN")
    r = api.put(f"{SERVICES}/{ts['id']}", headers=ALICE, json={"tap_service": {"name": "renamed"}})
    # status is the datapath's (ACTIVE once it sees lo up, when the tests run as root)
    assert r.status_code == 200
    assert r.json()["tap_service"] | {"status": "-"} == {**ts, "name": "renamed", "status": "-"}
    error(api.put(f"{SERVICES}/{ts['id']}", headers=ALICE, json={"tap_service": {"port_id": src["id"]}}),
          400, "HTTPBadRequest", "Cannot update read-only attribute port_id")
    live = {"status": "-", "status_reason": "-"}  # the datapath sets these as it goes
    assert [f | live for f in api.get(FLOWS, headers=ALICE).json()["tap_flows"]] == [tf | live]
    r = api.delete(f"{SERVICES}/{ts['id']}", headers=ALICE)
    assert r.status_code == 204 and r.content == b""
    assert api.get(FLOWS, headers=ALICE).json() == {"tap_flows": []}  # its flows went with it
    error(api.get(f"{SERVICES}/{ts['id']}", headers=ALICE), 404, "TapServiceNotFound",
          f"Tap Service  {ts['id']} does not exist")


def test_deleting_a_port_cascades(api: TestClient) -> None:
    mon, src, other = port(api, iface="lo"), port(api, iface="eth9"), port(api, iface="eth8")
    ts = service(api, mon["id"])
    kept = service(api, other["id"])
    flow(api, ts["id"], src["id"])
    from_src = flow(api, kept["id"], src["id"])
    flow(api, kept["id"], mon["id"])
    assert api.delete(f"{PORTS}/{mon['id']}", headers=ADMIN).status_code == 204
    assert [s["id"] for s in api.get(SERVICES, headers=ALICE).json()["tap_services"]] == [kept["id"]]
    assert [f["id"] for f in api.get(FLOWS, headers=ALICE).json()["tap_flows"]] == [from_src["id"]]
    assert api.delete(f"{PORTS}/{src['id']}", headers=ADMIN).status_code == 204
    assert api.get(FLOWS, headers=ALICE).json()["tap_flows"] == []


@pytest.mark.parametrize(("body", "words"), [
    ({"tap_service": {"port_id": "x", "bogus": 1}}, "Unrecognized attribute(s) 'bogus'"),
    ({"tap_service": {"port_id": str(uuid.uuid4()), "id": str(uuid.uuid4())}}, "Attribute 'id' not allowed in POST"),
    ({"tap_service": {"port_id": str(uuid.uuid4()), "status": "UP"}}, "Attribute 'status' not allowed in POST"),
    ({"tap_service": {"name": "x"}}, "Failed to parse request. Required attribute 'port_id' not specified"),
    ({"tap_service": {"port_id": "not-a-uuid"}},
     "Invalid input for port_id. Reason: 'not-a-uuid' is not a valid UUID."),
    ({"tap_service": {"port_id": str(uuid.uuid4()), "name": 5}}, "Invalid input for name. Reason: '5' is not a valid"),
    ({"tap_service": {"port_id": str(uuid.uuid4()), "tap_id": 3}}, "Unrecognized attribute(s) 'tap_id'"),
    ({"something": {}}, "Unable to find 'tap_service' in request body"),
    ({"tap_service": "x"}, "Unable to find 'tap_service' in request body"),
    ([1, 2], "Body contains invalid data"),
    ({"tap_services": []}, "Resources required"),
    ({"tap_service": {"port_id": str(uuid.uuid4()), "project_id": "bob"}}, "requires admin privileges"),
    ({"tap_service": {"port_id": str(uuid.uuid4()), "project_id": "alice", "tenant_id": "bob"}}, "do not match"),
])
def test_bad_tap_service_bodies_are_400(api: TestClient, body: object, words: str) -> None:
    error(api.post(SERVICES, headers=ALICE, json=body), 400, "HTTPBadRequest", words)
    assert api.get(SERVICES, headers=ADMIN).json() == {"tap_services": []}


@pytest.mark.parametrize(("extra", "words"), [
    ({"direction": "SIDEWAYS"}, "Invalid input for direction. Reason: 'SIDEWAYS' is not in ['IN', 'OUT', 'BOTH']."),
    ({"direction": "BOTH", "vlan_filter": "9,4096"}, "Invalid input for vlan_filter"),
    ({"direction": "BOTH", "vlan_filter": "20-10"}, "Invalid input for vlan_filter"),
    ({"direction": "BOTH", "vlan_filter": "a"}, "Invalid input for vlan_filter"),
])
def test_bad_tap_flows_are_400(api: TestClient, extra: dict, words: str) -> None:
    p = port(api)
    ts = service(api, p["id"])
    r = api.post(FLOWS, headers=ALICE, json={"tap_flow": {"tap_service_id": ts["id"], "source_port": p["id"], **extra}})
    error(r, 400, "HTTPBadRequest", words)


def test_malformed_json_and_missing_body(api: TestClient) -> None:
    error(api.post(SERVICES, headers=ALICE, content=b"{nope"), 400, "HTTPBadRequest", "Malformed request body")
    error(api.post(SERVICES, headers=ALICE), 400, "HTTPBadRequest", "Resource body required")


def test_ownership_and_policy(api: TestClient) -> None:
    alice_port, bob_port = port(api, "alice"), port(api, "bob", iface="eth7")
    error(api.post(SERVICES, headers=ALICE, json={"tap_service": {"port_id": bob_port["id"]}}),
          404, "PortNotFound", f"Port {bob_port['id']} could not be found.")
    error(api.post(SERVICES, headers=ADMIN, json={"tap_service": {"port_id": bob_port["id"], "project_id": "alice"}}),
          403, "PortDoesNotBelongToTenant", "The specified port does not belong to the tenant")
    ts = service(api, alice_port["id"])
    error(api.post(FLOWS, headers=ADMIN, json={"tap_flow": {"tap_service_id": ts["id"], "source_port": alice_port["id"],
                                                            "direction": "IN", "project_id": "bob"}}),
          403, "TapServiceNotBelongToTenant", "Specified Tap Service does not belong to the tenant")
    for method in ("get", "delete"):
        error(getattr(api, method)(f"{SERVICES}/{ts['id']}", headers=BOB), 404, "TapServiceNotFound")
    error(api.put(f"{SERVICES}/{ts['id']}", headers=BOB, json={"tap_service": {"name": "x"}}),
          404, "TapServiceNotFound")
    assert api.get(SERVICES, headers=BOB).json() == {"tap_services": []}
    assert api.get(SERVICES, headers=READER).json()["tap_services"][0]["id"] == ts["id"]  # readers read
    error(api.post(SERVICES, headers=READER, json={"tap_service": {"port_id": alice_port["id"]}}),
          403, "PolicyNotAuthorized", "rule:create_tap_service is disallowed by policy")
    error(api.delete(f"{SERVICES}/{ts['id']}", headers=READER), 403, "PolicyNotAuthorized")
    assert len(api.get(SERVICES, headers=ADMIN).json()["tap_services"]) == 1  # admins see every project


def test_bulk_create_is_all_or_nothing(api: TestClient) -> None:
    p = port(api)
    good = {"port_id": p["id"], "name": "a"}
    r = api.post(SERVICES, headers=ALICE, json={"tap_services": [good, {**good, "name": "b"}]})
    assert r.status_code == 201 and [s["name"] for s in r.json()["tap_services"]] == ["a", "b"]
    r = api.post(SERVICES, headers=ALICE, json={"tap_services": [good, {"port_id": str(uuid.uuid4())}]})
    error(r, 404, "PortNotFound")
    assert len(api.get(SERVICES, headers=ALICE).json()["tap_services"]) == 2


def test_fields_filters_sorting_and_pages(api: TestClient) -> None:
    p = port(api)
    made = [service(api, p["id"], name=n) for n in ("c", "a", "b", "a")]
    r = api.get(SERVICES, headers=ALICE, params=[("fields", "id"), ("fields", "name")])
    assert all(set(s) == {"id", "name"} for s in r.json()["tap_services"])
    assert api.get(f"{SERVICES}/{made[0]['id']}", headers=ALICE, params={"fields": "name"}).json() == {
        "tap_service": {"name": "c"}}
    names = lambda r: [s["name"] for s in r.json()["tap_services"]]  # noqa: E731
    assert names(api.get(SERVICES, headers=ALICE, params=[("name", "a"), ("name", "b")])) == ["a", "b", "a"]
    assert names(api.get(SERVICES, headers=ALICE, params={"sort_key": "name", "sort_dir": "desc"})) == [
        "c", "b", "a", "a"]
    error(api.get(SERVICES, headers=ALICE, params={"sort_key": "tap_id"}), 400, "HTTPBadRequest", "sort_key")
    error(api.get(SERVICES, headers=ALICE, params={"colour": "red"}), 400, "HTTPBadRequest", "filtering")
    first = api.get(SERVICES, headers=ALICE, params={"limit": 3, "sort_key": "name", "sort_dir": "asc"})
    assert names(first) == ["a", "a", "b"]
    links = {link["rel"]: link["href"] for link in first.json()["tap_services_links"]}
    second = api.get(links["next"].replace("http://testserver", ""), headers=ALICE)
    assert names(second) == ["c"] and "tap_services_links" in second.json()
    back = {link["rel"]: link["href"] for link in second.json()["tap_services_links"]}["previous"]
    assert names(api.get(back.replace("http://testserver", ""), headers=ALICE)) == ["a", "a", "b"]
    error(api.get(SERVICES, headers=ALICE, params={"limit": "x"}), 400, "HTTPBadRequest", "not an integer")
    error(api.get(SERVICES, headers=ALICE, params={"limit": 1, "page_reverse": "maybe"}), 400, "HTTPBadRequest",
          "Invalid input for page_reverse")


def test_other_methods_and_discovery(api: TestClient) -> None:
    error(api.patch(SERVICES, headers=ALICE, json={}), 405, "HTTPMethodNotAllowed")
    error(api.put(SERVICES, headers=ALICE, json={}), 405, "HTTPMethodNotAllowed")
    aliases = {e["alias"] for e in api.get("/v2.0/extensions", headers=ALICE).json()["extensions"]}
    assert {"taas", "taas-vlan-filter"} <= aliases
    assert {r["collection"] for r in api.get("/v2.0/", headers=ALICE).json()["resources"]} == {
        "ports", "tap_services", "tap_flows"}


def test_tap_ids_run_out(make_client: Callable[..., TestClient]) -> None:
    api = make_client(tap_id_range=[7, 8])
    p = port(api)
    assert len({service(api, p["id"])["id"] for _ in range(2)}) == 2
    error(api.post(SERVICES, headers=ALICE, json={"tap_service": {"port_id": p["id"]}}), 409,
          "TapServiceLimitReached")


def test_tap_services_are_observation_points_of_their_project(api: TestClient) -> None:
    ts = service(api, port(api, iface="lo")["id"], name="mon")
    names = lambda who: set(api.get("/capabilities", headers=who).json()["network_observation_pts"])  # noqa: E731
    # listed once, by its name (and found by its id too, below); another project does not see it
    assert "mon" in names(ALICE) and ts["id"] not in names(ALICE) and "mon" not in names(BOB)
    now = int(time.time())
    window = {"start": now + 300, "stop": now + 310}
    r = api.get("/capture/ethernet", headers=BOB, params={**window, "observationpt": "mon"})
    assert r.status_code == 400 and "unknown observation point 'mon'" in r.json()["msg"]
    r = api.get("/capture/ethernet", headers=ALICE, params={**window, "observationPt": ts["id"]})
    assert r.status_code == 200 and r.json()["state"] == "scheduled", r.text
    bobs = service(api, port(api, "bob", iface="eth5")["id"], who=BOB, name="mon")  # the same name elsewhere
    r = api.get("/capture/ethernet", headers=BOB, params={**window, "observationpt": "mon"})
    assert r.status_code == 200, r.text  # bob's own "mon", not alice's
    assert api.get(f"/captures/{r.json()['id']}", headers=ADMIN).json()["capture"]["interface"] == "eth5"
    assert "mon" in names(BOB) and bobs["id"] not in names(BOB)
