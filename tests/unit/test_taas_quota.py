"""Finding 8 (TaaS): Neutron's quota API for tap_service and tap_flow. Who may read and set a quota (admin, member
and reader of the project, another project's member, no token), over quota is 409 OverQuota with nothing
created (a bulk create counts every item). Racing creates and the real openstacksdk, against a daemon:
tests/system/test_taas_quota_daemon.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ..support.taasapi import OVER_SERVICE, QUOTA, alice_port

ADMIN, ALICE, READER, BOB = ({"X-Auth-Token": t} for t in ("tok-admin", "tok-alice", "tok-alice-reader", "tok-bob"))
WHO = {"admin": ADMIN, "member": ALICE, "reader": READER, "other": BOB, "none": {}}
SERVICES, FLOWS = "/v2.0/taas/tap_services", "/v2.0/taas/tap_flows"


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(taas_quota=QUOTA)


def count(api: Any, path: str) -> int:
    return len(api.get(path, headers=ADMIN).json()[path.rsplit("/", 1)[1]])


READS = {  # role -> status of reading alice's quota (own project: anyone of it; another's: admin only)
    "admin": 200, "member": 200, "reader": 200, "other": 403, "none": 401,
}


@pytest.mark.parametrize("role", list(WHO))
@pytest.mark.parametrize("suffix", ["", "/default", "/details"])
def test_reading_a_quota(api: TestClient, role: str, suffix: str) -> None:
    r = api.get(f"/v2.0/quotas/alice{suffix}", headers=WHO[role])
    assert r.status_code == READS[role], r.text
    if r.status_code == 200:
        expected = ({k: {"limit": v, "used": 0, "reserved": 0} for k, v in QUOTA.items()} if suffix == "/details"
                    else QUOTA)
        assert r.json() == {"quota": expected}
    elif role == "other":
        assert r.json()["NeutronError"]["type"] == "PolicyNotAuthorized"
        assert r.json()["NeutronError"]["message"] == "rule:get_quota is disallowed by policy"
    # everyone may read their own project's
    if role in ("member", "reader", "other"):
        own = "bob" if role == "other" else "alice"
        assert api.get(f"/v2.0/quotas/{own}{suffix}", headers=WHO[role]).status_code == 200


@pytest.mark.parametrize("role", list(WHO))
def test_listing_setting_and_resetting_are_the_admins(api: TestClient, role: str) -> None:
    expected = 200 if role == "admin" else 401 if role == "none" else 403
    r = api.put("/v2.0/quotas/alice", headers=WHO[role], json={"quota": {"tap_service": 5}})
    assert r.status_code == expected, r.text
    if role == "admin":
        assert r.json() == {"quota": {"tap_service": 5, "tap_flow": 3}}
    else:  # a refused write changed nothing
        assert api.get("/v2.0/quotas/alice", headers=ADMIN).json() == {"quota": QUOTA}
        api.put("/v2.0/quotas/alice", headers=ADMIN, json={"quota": {"tap_service": 5}})
    listed = api.get("/v2.0/quotas", headers=WHO[role])
    assert listed.status_code == expected, listed.text
    if role == "admin":
        assert listed.json() == {"quotas": [{"project_id": "alice", "tenant_id": "alice", "tap_service": 5,
                                             "tap_flow": 3}]}
    deleted = api.delete("/v2.0/quotas/alice", headers=WHO[role])
    assert deleted.status_code == (204 if role == "admin" else expected), deleted.text
    after = api.get("/v2.0/quotas/alice", headers=ADMIN).json()["quota"]
    assert after == (QUOTA if role == "admin" else {**QUOTA, "tap_service": 5})
    if role != "admin":
        assert deleted.json()["NeutronError" if role != "none" else "status"]
    else:  # a project without a quota of its own: Neutron's 404
        again = api.delete("/v2.0/quotas/alice", headers=ADMIN)
        assert again.status_code == 404 and again.json()["NeutronError"]["type"] == "TenantQuotaNotFound"


@pytest.mark.parametrize(("body", "words"), [
    ({"quota": {"tap_service": "5"}}, "Invalid input for tap_service. Reason: '5' is not an integer."),
    ({"quota": {"tap_service": True}}, "is not an integer"),
    ({"quota": {"tap_service": 1.0}}, "is not an integer"),
    ({"quota": {"tap_flow": -2}}, "'-2' is not in range -1 through 2147483647"),
    ({"quota": {"tap_flow": 2**31}}, "is not in range"),
    ({"quota": {"port": 5}}, "Unrecognized attribute(s) 'port'"),
    ({"quota": {"check_limit": "yes"}}, "Invalid input for check_limit"),
    ({"quota": 5}, "Unable to find 'quota' in request body"),
    ({}, "Unable to find 'quota' in request body"),
])
def test_bad_quota_updates_are_400(api: TestClient, body: dict, words: str) -> None:
    r = api.put("/v2.0/quotas/alice", headers=ADMIN, json=body)
    assert r.status_code == 400 and words in r.json()["NeutronError"]["message"], r.text
    assert api.get("/v2.0/quotas", headers=ADMIN).json() == {"quotas": []}
    long = api.get("/v2.0/quotas/" + "p" * 256, headers=ADMIN)
    assert long.status_code == 400 and long.json()["NeutronError"]["type"] == "HTTPBadRequest", long.text


def test_check_limit_refuses_a_limit_below_the_usage(api: TestClient) -> None:
    port = alice_port(api)
    for _ in range(2):
        assert api.post(SERVICES, headers=ALICE, json={"tap_service": {"port_id": port}}).status_code == 201
    r = api.put("/v2.0/quotas/alice", headers=ADMIN, json={"quota": {"tap_service": 1, "check_limit": True}})
    assert r.status_code == 400 and "must be greater than or equal to already used 2" in r.text, r.text
    r = api.put("/v2.0/quotas/alice", headers=ADMIN, json={"quota": {"tap_service": 1, "force": True}})
    assert r.status_code == 200 and r.json()["quota"]["tap_service"] == 1
    details = api.get("/v2.0/quotas/alice/details", headers=ALICE).json()["quota"]
    assert details["tap_service"] == {"limit": 1, "used": 2, "reserved": 0}


def test_a_member_over_quota_gets_409_and_nothing_is_created(api: TestClient) -> None:
    port = alice_port(api)
    one = {"tap_service": {"port_id": port}}
    assert api.post(SERVICES, headers=ALICE, json=one).status_code == 201
    # a bulk create counts every item: 1 + 2 > 2, so neither is made
    r = api.post(SERVICES, headers=ALICE, json={"tap_services": [one["tap_service"]] * 2})
    assert r.status_code == 409 and r.json() == OVER_SERVICE, r.text
    assert count(api, SERVICES) == 1
    assert api.post(SERVICES, headers=ALICE, json=one).status_code == 201
    r = api.post(SERVICES, headers=ALICE, json=one)
    assert r.status_code == 409 and r.json() == OVER_SERVICE
    # the admin creating in alice's project counts against alice's quota too; bob's project is untouched
    assert api.post(SERVICES, headers=ADMIN, json={"tap_service": {**one["tap_service"],
                                                                   "project_id": "alice"}}).status_code == 409
    assert count(api, SERVICES) == 2
    service = api.get(SERVICES, headers=ALICE).json()["tap_services"][0]["id"]
    flow = {"tap_service_id": service, "source_port": port, "direction": "IN"}
    r = api.post(FLOWS, headers=ALICE, json={"tap_flows": [flow] * 4})
    assert r.status_code == 409 and r.json()["NeutronError"]["message"] == "Quota exceeded for resources: " \
                                                                           "['tap_flow'].", r.text
    assert count(api, FLOWS) == 0
    assert api.post(FLOWS, headers=ALICE, json={"tap_flows": [flow] * 3}).status_code == 201
    # deleting frees quota; -1 is unlimited
    assert api.delete(f"{SERVICES}/{service}", headers=ALICE).status_code == 204  # takes its flows along
    assert api.post(SERVICES, headers=ALICE, json=one).status_code == 201
    api.put("/v2.0/quotas/alice", headers=ADMIN, json={"quota": {"tap_service": -1}})
    for _ in range(3):
        assert api.post(SERVICES, headers=ALICE, json=one).status_code == 201
