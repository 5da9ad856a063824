"""Fuzzing the Neutron API: random bodies (the right attribute names with wrong values and shapes, unknown
names, wrong envelopes), random ids and query strings, from every role. No request may get a 5xx, and every
error must be a NeutronError body."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opentap.taas.attributes import RESOURCES

TOKENS = ("tok-admin", "tok-alice", "tok-alice-reader", "tok-bob")
CASES = 400  # per test; the note reports how many ran
NAMES = sorted({a.name for r in RESOURCES for a in r.attrs} | {"bogus", "", "binding:profile"})
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                    st.text(max_size=40), st.sampled_from(["IN", "OUT", "BOTH", "lo", "9,18-27", "00000000-0000-"
                                                           "0000-0000-000000000000", "true", "0"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=3)),
                      max_leaves=6)
items = st.dictionaries(st.sampled_from(NAMES), st.one_of(values, st.sampled_from(range(2)).map(
    lambda i: KNOWN_IDS[i])), max_size=6)
envelopes = st.one_of(
    st.builds(lambda r, i: {r.member: i}, st.sampled_from(RESOURCES), items),
    st.builds(lambda r, i: {r.collection: i}, st.sampled_from(RESOURCES), st.lists(items, max_size=3)),
    values,
)
KNOWN_IDS: list[str] = []
ids = st.one_of(st.text(max_size=40), st.sampled_from(range(2)).map(lambda i: KNOWN_IDS[i]))
queries = st.lists(st.tuples(st.sampled_from(NAMES + ["fields", "sort_key", "sort_dir", "limit", "marker",
                                                      "page_reverse"]), st.text(max_size=12)), max_size=4)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from opentap import config
    from opentap.api.app import create_app

    from ..support.configs import write_config

    cfg = config.load(write_config(tmp_path_factory.mktemp("fuzz"), {"lo": "lo"}))
    with TestClient(create_app(cfg)) as client:
        admin = {"X-Auth-Token": "tok-admin"}
        port = client.post("/v2.0/ports", headers=admin, json={"port": {
            "project_id": "alice", "binding:profile": {"interface": "lo"}}}).json()["port"]
        ts = client.post("/v2.0/taas/tap_services", headers=admin, json={"tap_service": {
            "project_id": "alice", "port_id": port["id"]}}).json()["tap_service"]
        KNOWN_IDS.extend([port["id"], ts["id"]])  # so updates and references also meet real objects
        yield client


def check(r: Any) -> None:
    assert r.status_code < 500, r.text
    if r.status_code >= 400 and r.status_code != 401:
        assert set(r.json()["NeutronError"]) == {"type", "message", "detail"}


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(resource=st.sampled_from(RESOURCES), body=envelopes, token=st.sampled_from(TOKENS),
       method=st.sampled_from(["post", "put", "delete"]), obj_id=ids)
def test_random_bodies(api: TestClient, resource: Any, body: Any, token: str, method: str, obj_id: str) -> None:
    path = resource.path if method == "post" else f"{resource.path}/{quote(obj_id, safe='') or 'x'}"
    check(api.request(method.upper(), path, headers={"X-Auth-Token": token}, content=json.dumps(body)))


@settings(max_examples=CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(resource=st.sampled_from(RESOURCES), query=queries, token=st.sampled_from(TOKENS),
       raw=st.binary(max_size=30))
def test_random_queries_and_raw_bodies(api: TestClient, resource: Any, query: list, token: str,
                                       raw: bytes) -> None:
    headers = {"X-Auth-Token": token}
    check(api.get(resource.path, headers=headers, params=query))
    check(api.post(resource.path, headers=headers, content=raw))
