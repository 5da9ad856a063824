"""What OpenStack's clients expect around Neutron's resources (issue 13, items 7 and 8): a request id on every
response, the `.json` suffix, If-Match as Neutron answers it, sort keys limited and paired as Neutron's are, and
ports' standard attributes (revision_number, created_at, updated_at, tags) and binding:host_id."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

ADMIN, ALICE = {"X-Auth-Token": "tok-admin"}, {"X-Auth-Token": "tok-alice"}
PORTS, SERVICES, FLOWS = "/v2.0/ports", "/v2.0/taas/tap_services", "/v2.0/taas/tap_flows"
REQUEST_ID = re.compile(r"req-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(device_name="virgo")


def made(api: TestClient, path: str, member: str, body: dict, who: dict = ADMIN) -> dict:
    r = api.post(path, headers=who, json={member: body})
    assert r.status_code == 201, r.text
    return r.json()[member]


def alice_port(api: TestClient, **extra: object) -> dict:
    return made(api, PORTS, "port", {"project_id": "alice", "binding:profile": {"interface": "lo"}, **extra})


def neutron_error(r, status: int, kind: str, message: str) -> None:  # noqa: ANN001
    assert r.status_code == status, r.text
    assert r.json() == {"NeutronError": {"type": kind, "message": message, "detail": ""}}


def test_every_response_has_a_request_id(api: TestClient) -> None:
    port = alice_port(api)
    answers = [
        api.get("/healthz"), api.get("/capabilities", headers=ADMIN), api.get("/captures"),  # 200, 200, 401
        api.get(f"{PORTS}/{port['id']}", headers=ALICE), api.get(f"{PORTS}/nope", headers=ALICE),  # 200, 404
        api.get(PORTS, headers=ALICE, params={"name": "a\x00"}),  # the boundary's 400
        api.patch(PORTS, headers=ADMIN),  # 405
        api.post(SERVICES, headers=ALICE, content=b"{"),  # a Neutron 400
        api.get("/v2.0/tenants/nobody", headers=ADMIN),  # Keystone's 404
    ]
    assert [r.status_code for r in answers] == [200, 200, 401, 200, 404, 400, 405, 400, 404]
    ids = [r.headers.get("x-openstack-request-id", "") for r in answers]
    assert all(REQUEST_ID.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)  # one per request


def test_a_500_carries_its_request_id_into_the_log(make_client: Callable[..., TestClient],
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """Starlette answers a 500 from outside every middleware: the error handler adds the id, and logs it."""
    api = make_client()
    broken = TestClient(api.app, raise_server_exceptions=False)

    def fail(*_args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(api.app.state.device.taas, "rows", fail)
    with caplog.at_level(logging.ERROR, logger="opentap.api"):
        r = broken.get(PORTS, headers=ADMIN)
    rid = r.headers["x-openstack-request-id"]
    assert r.status_code == 500 and REQUEST_ID.fullmatch(rid) and rid in r.json()["msg"]
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "opentap.api"]
    assert logged == [f"unhandled error on GET {PORTS} [{rid}]"]


def test_the_json_suffix_is_accepted_as_neutron_does(api: TestClient) -> None:
    port = alice_port(api)
    assert api.get(f"{PORTS}.json", headers=ALICE).json() == api.get(PORTS, headers=ALICE).json()
    assert api.get(f"{PORTS}/{port['id']}.json", headers=ALICE).json()["port"]["id"] == port["id"]
    r = api.post(f"{SERVICES}.json", headers=ALICE, json={"tap_service": {"port_id": port["id"]}})
    assert r.status_code == 201
    ts = r.json()["tap_service"]
    r = api.put(f"{SERVICES}/{ts['id']}.json", headers=ALICE, json={"tap_service": {"name": "j"}})
    assert r.json()["tap_service"]["name"] == "j"
    assert api.delete(f"{SERVICES}/{ts['id']}.json", headers=ALICE).status_code == 204
    assert api.get("/v2.0/extensions.json", headers=ALICE).status_code == 200
    # with pagination, the links name the path without the suffix, which works the same
    assert api.get(f"{PORTS}.json", headers=ALICE, params={"limit": 1}).json()["ports_links"][0]["href"].startswith(
        f"http://testserver{PORTS}?")
    assert api.get("/captures.json", headers=ADMIN).status_code == 404  # OpenTap's own calls have no formats


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_if_match_on_tap_services_and_flows_is_neutrons_400(api: TestClient, method: str) -> None:
    port = alice_port(api)
    ts = made(api, SERVICES, "tap_service", {"port_id": port["id"]}, ALICE)
    tf = made(api, FLOWS, "tap_flow", {"tap_service_id": ts["id"], "source_port": port["id"], "direction": "IN"},
              ALICE)
    # flows first: deleting the tap service would take its flows with it
    for path, obj, member, body in ((FLOWS, tf, "tap_flow", {"tap_service_id": ts["id"], "source_port": port["id"],
                                                             "direction": "IN"}),
                                    (SERVICES, ts, "tap_service", {"port_id": port["id"]})):
        url = path if method == "POST" else f"{path}/{obj['id']}"
        payload = {"json": {member: body if method == "POST" else {"name": "x"}}} if method != "DELETE" else {}
        for header in ("revision_number=1", '"revision_number=7"', 'W/"x", "revision_number=2"'):
            r = api.request(method, url, headers={**ALICE, "If-Match": header}, **payload)
            neutron_error(r, 400, "BadRequest", f"Bad {path.rsplit('/', 1)[1]} request: Revision matching not "
                                                "supported for this resource.")
        for header in ("*", '"some-etag"', 'W/"revision_number=1"'):  # no revision constraint: no effect
            r = api.request(method, url, headers={**ALICE, "If-Match": header}, **payload)
            assert r.status_code in (200, 201, 204), (header, r.text)
            if method == "DELETE":
                break
    assert api.get(f"{SERVICES}/{ts['id']}", headers={**ALICE, "If-Match": "revision_number=3"}).status_code == (
        404 if method == "DELETE" else 200)  # reads ignore the constraint


def test_a_malformed_if_match_is_a_400_everywhere(api: TestClient) -> None:
    port = alice_port(api)
    for header, words in (("revision_number=x", "Revision number etag must be in the format of revision_number=<int>"),
                          ("revision_number=1, revision_number=2",
                           "Revision number etag must be in the format of revision_number=<int>"),
                          ('"revision_number=1", "revision_number=2"',
                           "Multiple revision_number etags are not supported.")):
        for r in (api.get(PORTS, headers={**ALICE, "If-Match": header}),
                  api.get(f"{PORTS}/{port['id']}", headers={**ALICE, "If-Match": header}),
                  api.get(SERVICES, headers={**ALICE, "If-Match": header})):
            neutron_error(r, 400, "HTTPBadRequest", words)


def test_ports_compare_their_revision(api: TestClient) -> None:
    port = alice_port(api, name="a")
    url = f"{PORTS}/{port['id']}"
    assert port["revision_number"] == 1
    r = api.put(url, headers={**ADMIN, "If-Match": "revision_number=5"}, json={"port": {"name": "b"}})
    neutron_error(r, 412, "RevisionNumberConstraintFailed", "Constrained to 5, but current revision is 1")
    assert api.get(url, headers=ADMIN).json()["port"]["name"] == "a"  # nothing changed
    r = api.put(url, headers={**ADMIN, "If-Match": "revision_number=1"}, json={"port": {"name": "b"}})
    assert r.status_code == 200 and r.json()["port"]["revision_number"] == 2
    r = api.delete(url, headers={**ADMIN, "If-Match": "revision_number=1"})
    neutron_error(r, 412, "RevisionNumberConstraintFailed", "Constrained to 1, but current revision is 2")
    assert api.delete(url, headers={**ADMIN, "If-Match": '"revision_number=2"'}).status_code == 204
    neutron_error(api.put(url, headers={**ADMIN, "If-Match": "revision_number=2"}, json={"port": {"name": "c"}}),
                  404, "PortNotFound", f"Port {port['id']} could not be found.")


def test_ports_carry_neutrons_standard_attributes(api: TestClient) -> None:
    before = time.time()
    port = alice_port(api, name="a")
    assert UTC.fullmatch(port["created_at"]) and port["updated_at"] == port["created_at"]
    assert abs(time.mktime(time.strptime(port["created_at"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone - before) < 5
    assert (port["revision_number"], port["tags"], port["binding:host_id"]) == (1, [], "virgo")
    url = f"{PORTS}/{port['id']}"
    same = api.put(url, headers=ADMIN, json={"port": {"name": "a"}}).json()["port"]
    assert same == port  # no change, no new revision (as Neutron bumps only what changed)
    time.sleep(1.1)  # the times are to the second
    changed = api.put(url, headers=ADMIN, json={"port": {"name": "b", "binding:host_id": "elsewhere"}}).json()["port"]
    assert (changed["revision_number"], changed["binding:host_id"]) == (2, "elsewhere")
    assert changed["created_at"] == port["created_at"] < changed["updated_at"]
    assert api.get(url, headers=ALICE).json()["port"] == changed
    named = alice_port(api, **{"binding:host_id": "hv7"})
    assert named["binding:host_id"] == "hv7"
    # tags: a filter asks for ports with all the tags named; this device has no tag API, so none has any
    assert api.get(PORTS, headers=ALICE, params={"tags": "red"}).json() == {"ports": []}
    listed = api.get(PORTS, headers=ALICE, params={"revision_number": "2", "fields": ["id", "revision_number"]})
    assert listed.json() == {"ports": [{"id": port["id"], "revision_number": 2}]}


@pytest.mark.parametrize(("path", "params", "message"), [
    (SERVICES, {"sort_key": "name"}, "The number of sort_keys and sort_dirs must be same"),
    (SERVICES, {"sort_dir": "asc"}, "The number of sort_keys and sort_dirs must be same"),
    (SERVICES, [("sort_key", "name"), ("sort_key", "id"), ("sort_dir", "asc")],
     "The number of sort_keys and sort_dirs must be same"),
    (SERVICES, {"sort_key": "description", "sort_dir": "asc"}, "['description'] is invalid attribute for sort_keys"),
    (SERVICES, {"sort_key": "status", "sort_dir": "asc"}, "['status'] is invalid attribute for sort_keys"),
    (FLOWS, {"sort_key": "direction", "sort_dir": "asc"}, "['direction'] is invalid attribute for sort_keys"),
    (PORTS, {"sort_key": "binding:host_id", "sort_dir": "asc"},
     "['binding:host_id'] is invalid attribute for sort_keys"),
    (PORTS, {"sort_key": "created_at", "sort_dir": "asc"}, "['created_at'] is invalid attribute for sort_keys"),
    (SERVICES, {"sort_key": "name", "sort_dir": "up"},
     "['up'] is invalid value for sort_dirs, valid value is 'asc' and 'desc'"),
])
def test_sorting_is_checked_as_neutron_checks_it(api: TestClient, path: str, params: object, message: str) -> None:
    neutron_error(api.get(path, headers=ALICE, params=params), 400, "HTTPBadRequest", message)


def test_sorting_by_neutrons_sort_keys(api: TestClient) -> None:
    ports = [alice_port(api, name=n, device_owner=o) for n, o in (("b", "x"), ("a", "y"), ("c", "x"))]
    by = {p["id"]: p["name"] for p in ports}

    def names(path: str, params: list[tuple[str, str]]) -> list[str]:
        r = api.get(path, headers=ALICE, params=params)
        assert r.status_code == 200, r.text
        return [by[o["id"]] for o in r.json()["ports"]]

    assert names(PORTS, [("sort_key", "name"), ("sort_dir", "desc")]) == ["c", "b", "a"]
    assert names(PORTS, [("sort_key", "device_owner"), ("sort_dir", "asc"), ("sort_key", "name"),
                         ("sort_dir", "desc")]) == ["c", "b", "a"]
    assert names(PORTS, [("sort_key", "tenant_id"), ("sort_dir", "asc"), ("sort_key", "name"),
                         ("sort_dir", "asc")]) == ["a", "b", "c"]
    assert names(PORTS, [("sort_key", ""), ("sort_dir", "")]) == ["b", "a", "c"]  # empty ones do not count
