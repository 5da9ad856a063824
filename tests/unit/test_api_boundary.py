"""Finding 7, from the attacker's side: input that used to be a 500 (a lone surrogate in any string, JSON nested
~1,000 deep, a huge body, a NUL) is a 400 (413 for size) in the route family's error body, nothing is stored,
and every list still reads afterwards."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opentap.taas.attributes import PORTS, RESOURCES, TAP_SERVICES, Resource

from ..support.taasapi import (
    ADMIN,
    ALICE,
    JSON,
    READER,
    SURROGATE,
    neutron_400,
    objects,
    opentap_error,
    poisoned,
    send,
    state,
    valid_item,
)

LATER = int(time.time()) + 3600


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.collection)
def test_a_surrogate_in_any_taas_string_is_a_400_and_stores_nothing(api: TestClient, res: Resource) -> None:
    objs = objects(api)
    who = ADMIN if res is PORTS else ALICE  # members may not write ports; the admin may
    before = state(api)
    for item in poisoned(res, objs, put=False):
        neutron_400(send(api, "POST", res.path, {res.member: item}, who))
        neutron_400(send(api, "POST", res.path, {res.collection: [valid_item(res, objs), item]}, who))
    url = f"{res.path}/{objs[res]['id']}"
    for item in poisoned(res, objs, put=True):
        neutron_400(send(api, "PUT", url, {res.member: item}, who))
    assert state(api) == before  # nothing stored, and every list still reads (it was a 500 once one got in)


def test_a_surrogate_in_any_capture_parameter_is_a_400(api: TestClient) -> None:
    before = state(api)
    good = {"type": "ethernet", "start": LATER, "stop": LATER + 5, "observationpt": "lo"}
    for key in ("type", "start", "stop", "observationpt", "observationPt", "id", "filter", "snaplen", "period",
                "keep_packets", SURROGATE):
        opentap_error(send(api, "POST", "/captures", {**good, key: SURROGATE}, ALICE))
    # in a query string, percent-encoded: not valid UTF-8, so it reaches the checks as U+FFFD and is refused
    for key in ("observationpt", "id", "filter"):
        r = api.get(f"/capture/ethernet?start={LATER}&stop={LATER + 5}&{key}=%ED%A0%80", headers=ALICE)
        opentap_error(r)
    opentap_error(api.get(f"/capture/%ED%A0%80?start={LATER}&stop={LATER + 5}", headers=ALICE))
    assert state(api) == before


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize("levels", [33, 1000, 100_000])
def test_deep_json_is_a_400_on_every_body_route(api: TestClient, levels: int) -> None:
    objs = objects(api)
    before = state(api)
    for res in RESOURCES:  # a reader may PUT: the body is read before the policy says no
        neutron_400(api.put(f"{res.path}/{objs[res]['id']}", headers={**READER, **JSON}, content=nested(levels)))
        neutron_400(api.post(res.path, headers={**ALICE, **JSON}, content=nested(levels)))
        inside = b'{"%s": ' % res.member.encode() + nested(levels) + b"}"
        neutron_400(api.post(res.path, headers={**ALICE, **JSON}, content=inside))
    opentap_error(api.post("/captures", headers={**ALICE, **JSON}, content=nested(levels)))
    assert state(api) == before


def test_brackets_inside_strings_do_not_count_as_depth(api: TestClient) -> None:
    objs = objects(api)
    name = "[" * 100 + '\\"' + "{" * 100  # escaped quote: the scanner must not end the string there
    r = api.put(f"{TAP_SERVICES.path}/{objs[TAP_SERVICES]['id']}", headers={**ALICE, **JSON},
                content=b'{"tap_service": {"name": "%s"}}' % name.encode())
    assert r.status_code == 200 and r.json()["tap_service"]["name"] == "[" * 100 + '"' + "{" * 100, r.text
    depth_32 = {"tap_service": {"name": json.loads(nested(30))}}  # 32 levels: read, then refused by the route
    r = send(api, "PUT", f"{TAP_SERVICES.path}/{objs[TAP_SERVICES]['id']}", depth_32, ALICE)
    neutron_400(r)
    assert "nested" not in r.json()["NeutronError"]["message"]


def test_huge_bodies_are_413(api: TestClient) -> None:
    before = state(api)
    big = json.dumps({"tap_service": {"name": "x" * (1024 * 1024)}}).encode()
    r = api.post(TAP_SERVICES.path, headers={**ALICE, **JSON}, content=big)
    assert r.status_code == 413 and r.json()["NeutronError"]["type"] == "HTTPRequestEntityTooLarge", r.text
    opentap_error(api.post("/captures", headers={**ALICE, **JSON}, content=big), 413)

    def chunks() -> Any:  # no Content-Length: the limit is counted while reading
        for _ in range(20):
            yield b" " * 65536
    opentap_error(api.post("/captures", headers={**ALICE, **JSON}, content=chunks()), 413)
    assert state(api) == before


@pytest.mark.parametrize("raw", [
    b'{"type": "ethernet", "start": NaN, "stop": 2}',
    b'{"type": "ethernet", "start": Infinity, "stop": 2}',
    b'{"type": "eth\\u0000ernet", "start": 1, "stop": 2}',
    b'{"type": "ethernet", "filter": "\xff\xfe"}',
    b'\xef\xbb\xbf{"type": "ethernet"}',
    b'{"type": "ethernet", "start": 1' + b"0" * 5000 + b"}",
])
def test_other_bad_json_is_a_400(api: TestClient, raw: bytes) -> None:
    opentap_error(api.post("/captures", headers={**ALICE, **JSON}, content=raw))
    neutron_400(api.post(TAP_SERVICES.path, headers={**ALICE, **JSON}, content=raw))
    assert state(api)["captures"] == []


def test_nul_in_paths_and_queries_is_a_400(api: TestClient) -> None:
    opentap_error(api.get("/captures/a%00b", headers=ALICE))
    opentap_error(api.get("/retrieve?id=%00", headers=ALICE))
    opentap_error(api.get(f"/capture/ethernet?start={LATER}&stop={LATER + 5}&id=a%00", headers=ALICE))
    neutron_400(api.get(f"{PORTS.path}?name=%00", headers=ALICE))
    neutron_400(api.get(f"{PORTS.path}/%00", headers=ALICE))
    assert state(api)["captures"] == []
