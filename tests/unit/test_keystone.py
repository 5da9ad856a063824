"""Keystone's v2.0 tenants, as the OpenStack clients read them to resolve --project (api/keystone.py): every role
against every kind of project, Keystone's error body, and which projects count as known."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opentap import auth

TENANTS = "/v2.0/tenants"
ROLES = {"admin": "tok-admin", "member": "tok-alice", "reader": "tok-alice-reader", "other": "tok-bob", "nobody": None}
# project -> the roles that see it: alice's own, bob's, one that only owns a port, and one nobody knows
SEEN_BY = {"alice": {"admin", "member", "reader"}, "bob": {"admin", "other"}, "carol": {"admin"}, "demo": set()}
LISTED = {"admin": ["admin", "alice", "bob", "carol"], "member": ["alice"], "reader": ["alice"], "other": ["bob"]}


def tenant(name: str) -> dict:
    return {"id": name, "name": name, "description": "", "enabled": True}


def not_found(name: str) -> dict:
    return {"error": {"code": 404, "title": "Not Found", "message": f"Could not find project: {name}."}}


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    client = make_client()
    r = client.post("/v2.0/ports", headers={"X-Auth-Token": "tok-admin"},
                    json={"port": {"project_id": "carol", "binding:profile": {"interface": "lo"}}})
    assert r.status_code == 201, r.text  # carol has no token: only this port makes her known
    return client


@pytest.mark.parametrize("role", list(ROLES))
def test_role_by_project(api: TestClient, role: str) -> None:
    headers = {"X-Auth-Token": ROLES[role]} if ROLES[role] else {}
    r = api.get(TENANTS, headers=headers)
    if role == "nobody":
        assert r.status_code == 401 and r.json()["status"] == "error"  # OpenTap's 401, as on every route
        assert api.get(f"{TENANTS}/alice").status_code == 401
        return
    assert r.status_code == 200 and r.json() == {"tenants": [tenant(p) for p in LISTED[role]], "tenants_links": []}
    for project, seen in SEEN_BY.items():
        r = api.get(f"{TENANTS}/{project}", headers=headers)
        if role in seen:
            assert (r.status_code, r.json()) == (200, {"tenant": tenant(project)}), (role, project)
        else:  # another project's and an unknown one's answers are the same
            assert (r.status_code, r.json()) == (404, not_found(project)), (role, project)


def test_keystone_errors_everywhere_under_tenants(api: TestClient) -> None:
    admin = {"X-Auth-Token": "tok-admin"}
    r = api.post(TENANTS, headers=admin, json={"tenant": {"name": "x"}})
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert r.json() == {"error": {"code": 405, "title": "Method Not Allowed",
                                  "message": "The method is not allowed for the requested URL."}}
    r = api.get(f"{TENANTS}/a%00b", headers=admin)
    assert r.status_code == 400 and set(r.json()["error"]) == {"code", "title", "message"}
    r = api.get(f"{TENANTS}/alice/users", headers=admin)
    assert r.status_code == 404 and r.json()["error"]["title"] == "Not Found"
    assert api.get(f"{TENANTS}/alice.json", headers=admin).json() == {"tenant": tenant("alice")}


def test_a_new_token_makes_its_project_known_at_once(api: TestClient) -> None:
    cfg = api.app.state.device.cfg
    assert api.get(f"{TENANTS}/dave", headers={"X-Auth-Token": "tok-admin"}).status_code == 404
    text = cfg.path.read_text() + f'\n[[tokens]]\nsha256 = "{auth.hash_token("tok-dave")}"\nproject = "dave"\n' \
                                  'roles = ["member"]\n'
    cfg.path.write_text(text)
    os.utime(cfg.path, ns=(0, Path(cfg.path).stat().st_mtime_ns + 10**9))  # a new mtime, even within one tick
    assert api.get(f"{TENANTS}/dave", headers={"X-Auth-Token": "tok-admin"}).json() == {"tenant": tenant("dave")}
    assert api.get(TENANTS, headers={"X-Auth-Token": "tok-dave"}).json()["tenants"] == [tenant("dave")]


def test_without_authentication_everybody_is_the_admin_of_default(make_client: Callable[..., TestClient]) -> None:
    api = make_client(auth="none")
    assert api.get(TENANTS).json()["tenants"] == [tenant(p) for p in ("admin", "alice", "bob", "default")]
    assert api.get(f"{TENANTS}/default").json() == {"tenant": tenant("default")}


V3 = "/v3/projects"


@pytest.mark.parametrize("role", list(ROLES))
def test_v3_projects_role_by_project(api: TestClient, role: str) -> None:
    """The same projects as Keystone v3 has them, for a client with an identity v3 endpoint on the device."""
    headers = {"X-Auth-Token": ROLES[role]} if ROLES[role] else {}
    r = api.get(V3, headers=headers)
    if role == "nobody":
        assert r.status_code == 401 and api.get(f"{V3}/alice").status_code == 401
        return
    assert r.status_code == 200 and [p["name"] for p in r.json()["projects"]] == LISTED[role]
    for project, seen in SEEN_BY.items():
        one = api.get(f"{V3}/{project}", headers=headers)
        named = api.get(V3, headers=headers, params={"name": project}).json()["projects"]
        if role in seen:
            assert one.status_code == 200 and one.json()["project"]["id"] == project
            assert one.json()["project"]["domain_id"] == "default" and [p["id"] for p in named] == [project]
        else:
            assert (one.status_code, one.json()) == (404, not_found(project)) and named == []


def test_v3_version_document_needs_no_token(api: TestClient) -> None:
    r = api.get("/v3")
    assert r.status_code == 200 and r.json()["version"]["id"].startswith("v3.")
    assert r.json()["version"]["links"][0]["href"].endswith("/v3/")
