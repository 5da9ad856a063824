"""Finding 8 (TaaS), against a real daemon: racing creates cannot overshoot a project's quota, and the real
openstacksdk drives the quota API (who may do what, over quota is a 409: tests/unit/test_taas_quota.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..support.daemon import Daemon, running
from ..support.taasapi import QUOTA, alice_port

ADMIN, ALICE = ({"X-Auth-Token": t} for t in ("tok-admin", "tok-alice"))
SERVICES = "/v2.0/taas/tap_services"
# the SDK warns about its own deprecations (influxdb, service_type, ...): nothing the device can act on
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with running(Path(tmp_path_factory.mktemp("quota")), taas_quota=QUOTA) as d:
        yield d


def test_racing_creates_cannot_overshoot_the_quota(daemon: Daemon) -> None:
    """Many clients at once against a real daemon: every create counts under one lock until its commit."""
    port = alice_port(httpx.Client(base_url=daemon.url, timeout=30))
    httpx.put(f"{daemon.url}/v2.0/quotas/alice", headers=ADMIN, json={"quota": {"tap_service": 5}}, timeout=30)
    codes: list[int] = []

    def attack() -> None:
        with httpx.Client(base_url=daemon.url, headers=ALICE, timeout=30) as c:
            for _ in range(3):
                codes.append(c.post(SERVICES, json={"tap_services": [{"port_id": port}] * 2}).status_code)

    threads = [threading.Thread(target=attack) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = httpx.get(daemon.url + SERVICES, headers=ADMIN, timeout=30).json()["tap_services"]
    assert sorted(set(codes)) == [201, 409] and len(made) == 2 * codes.count(201) <= 5, codes
    for s in made:
        httpx.delete(f"{daemon.url}{SERVICES}/{s['id']}", headers=ADMIN, timeout=30)
    httpx.delete(f"{daemon.url}/v2.0/quotas/alice", headers=ADMIN, timeout=30)


def test_the_openstack_sdk_drives_the_quota_api(daemon: Daemon) -> None:
    openstack = pytest.importorskip("openstack", reason="openstacksdk is not installed (pip install -e '.[test]')")

    def network(token: str) -> Any:
        return openstack.connect(auth_type="admin_token", auth={"endpoint": daemon.url + "/v2.0",
                                                                "token": token}).network

    admin, alice = network("tok-admin"), network("tok-alice")
    assert alice.get_quota("alice").to_dict(computed=False)["tap_service"] == 2
    assert admin.get_quota_default("alice")["tap_flow"] == 3
    with pytest.raises(openstack.exceptions.ForbiddenException, match="rule:update_quota is disallowed"):
        alice.update_quota("alice", tap_service=50)
    with pytest.raises(openstack.exceptions.ForbiddenException, match="rule:get_quota is disallowed"):
        network("tok-bob").get_quota("alice")
    changed = admin.update_quota(admin.get_quota("alice"), tap_service=1)
    assert changed["tap_service"] == 1 and alice.get_quota("alice")["tap_service"] == 1
    assert [q.project_id for q in admin.quotas()] == ["alice"]

    port = admin.create_port(project_id="alice", name="q-mon", binding_profile={"interface": "lo"})
    ts = alice.create_tap_service(name="q-ts", port_id=port.id)
    with pytest.raises(openstack.exceptions.ConflictException,
                       match=r"Quota exceeded for resources: \['tap_service'\]\."):
        alice.create_tap_service(name="q-ts2", port_id=port.id)
    assert [s.name for s in alice.tap_services()] == ["q-ts"]
    details = alice.get_quota("alice", details=True)
    assert details["tap_service"] == {"limit": 1, "used": 1, "reserved": 0}

    assert admin.delete_quota("alice") is None
    assert alice.get_quota("alice")["tap_service"] == 2
    assert admin.delete_quota("alice", ignore_missing=True) is None  # no quota of its own now: 404, ignored
    alice.delete_tap_service(ts)
    admin.delete_port(port)
