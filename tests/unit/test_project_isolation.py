"""One project can neither learn about another's captures nor crowd them out: ids are per project, limits and
quota are per project (and device-wide), and messages speak of the caller's own project only. (The disk quota
with real traffic: tests/system/test_project_disk_quota.py; the engine's quota paths: test_engine_limits.py.)"""

from __future__ import annotations

import time

from ..support.apicalls import headers

LATER = int(time.time()) + 3600


def schedule(client, token: str, start: float = LATER, stop: float = LATER + 10, **extra: object):
    return client.get("/capture/linkstats", headers=headers(token),
                      params={"start": start, "stop": stop, "observationpt": "lo", **extra})


def test_capture_ids_are_per_project(make_client) -> None:
    client = make_client()
    assert schedule(client, "tok-alice", id="secret-incident-A").status_code == 200
    r = schedule(client, "tok-bob", id="secret-incident-A")
    assert r.status_code == 200 and r.json()["msg"] == ""  # bob learns nothing of alice's capture
    clash = client.post("/captures", json={"type": "linkstats", "id": "secret-incident-A", "start": LATER,
                                           "stop": LATER + 10, "observationpt": "lo"}, headers=headers("tok-alice"))
    assert clash.status_code == 409  # the owner's own clash (the original's GET call would get a fresh id)
    for token, project in (("tok-alice", "alice"), ("tok-bob", "bob")):
        mine = client.get("/captures/secret-incident-A", headers=headers(token)).json()["capture"]
        assert mine["project_id"] == project
        assert client.get("/captures/secret-incident-A", params={"project": "alice" if project == "bob" else "bob"},
                          headers=headers(token)).status_code == 404
    ambiguous = client.get("/captures/secret-incident-A", headers=headers())
    assert ambiguous.status_code == 409 and "alice, bob" in ambiguous.json()["msg"]
    assert "project=" in ambiguous.json()["msg"]
    r = client.get("/captures/secret-incident-A", params={"project": "bob"}, headers=headers())
    assert r.json()["capture"]["project_id"] == "bob"
    assert client.delete("/captures/secret-incident-A", params={"project": "bob"}, headers=headers()).status_code == 200
    assert client.get("/captures/secret-incident-A", params={"project": "alice"},
                      headers=headers()).json()["capture"]["state"] == "scheduled"
    assert client.get("/retrieve", params={"id": "secret-incident-A"}, headers=headers()).status_code == 409


def test_limits_are_per_project_and_messages_name_only_the_callers(make_client) -> None:
    client = make_client(max_concurrent_captures=4, project_max_concurrent_captures=2)
    for _ in range(2):
        assert schedule(client, "tok-alice").status_code == 200
    r = schedule(client, "tok-alice")
    assert r.status_code == 429 and "your project already has 2" in r.json()["msg"]
    for _ in range(2):  # alice's captures took none of bob's share
        assert schedule(client, "tok-bob").status_code == 200
    r = schedule(client, "tok-bob")
    assert r.status_code == 429 and "your project" in r.json()["msg"]
    r = schedule(client, "tok-admin")  # the device's own limit: 4 overlap now
    assert r.status_code == 429 and "this device has no free slot" in r.json()["msg"]
    assert "2" not in r.json()["msg"].replace("at most 4", "")  # nobody's count is told to anybody else


def test_a_projects_own_limit_overrides_the_default(make_client) -> None:
    client = make_client(project_max_concurrent_captures=1, extra_toml="[projects.bob]\nmax_concurrent_captures = 3")
    assert [schedule(client, "tok-bob").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert [schedule(client, "tok-alice").status_code for _ in range(2)] == [200, 429]
