"""The REST API without traffic: auth, capabilities, every bad input (status, message, nothing changed)."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from ..support.apicalls import headers

LATER = int(time.time()) + 3600


def ids(client: TestClient) -> list[str]:
    return [c["id"] for c in client.get("/captures", headers=headers()).json()["captures"]]


def test_auth_required_except_health_and_docs(client: TestClient) -> None:
    for path in ("/", "/capabilities", "/captures", "/retrieve?id=x", f"/capture/ethernet?start={LATER}&stop=1"):
        r = client.get(path)
        assert r.status_code == 401 and r.json()["status"] == "error" and "X-Auth-Token" in r.json()["msg"]
        assert client.get(path, headers=headers("nope")).status_code == 401
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok", "engine": "ok"}
    assert client.get("/openapi.json").status_code == 200
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/docs-static/swagger-ui-bundle.js" in docs.text and "cdn" not in docs.text
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200


def test_capabilities(make_client) -> None:
    client = make_client(points={"lo": "lo", "lab": '{interface = "lo", projects = ["bob"]}'},
                         capture_length_limit=600, retention_minutes=30)
    caps = client.get("/capabilities", headers=headers()).json()
    assert client.get("/", headers=headers()).json() == caps
    assert caps["capture_types"] == ["netflow", "ethernet", "linkstats", "sensor"]
    assert caps["network_observation_pts"] == ["lo", "lab"] and caps["retention"] == "30"  # text, as the original
    assert caps["capture_length_limit"] == 600 and caps["default_observation_point"] == "lo"
    assert caps["observation_points"]["network"][0] == {"name": "lo", "interface": "lo"}
    member = client.get("/capabilities", headers=headers("tok-alice")).json()
    assert member["observation_points"]["network"] == [{"name": "lo"}]  # no interface, no other project's point


BAD = [  # (params, status, message fragment)
    ({"stop": LATER}, 400, "'start' is required"),
    ({"start": "abc", "stop": LATER}, 400, "'start' must be UNIX seconds"),
    ({"start": "nan", "stop": LATER}, 400, "'start' must be UNIX seconds in ASCII digits"),
    ({"start": "inf", "stop": LATER}, 400, "'start' must be UNIX seconds in ASCII digits"),
    ({"start": -5, "stop": LATER}, 400, "between 0 and"),
    ({"start": LATER, "stop": "1e30"}, 400, "'stop' must be UNIX seconds in ASCII digits"),
    ({"start": LATER, "stop": "1" + "0" * 25}, 400, "between 0 and"),
    ({"start": LATER, "stop": LATER - 10}, 400, "Start time is later than stop time."),
    ({"start": LATER, "stop": LATER}, 400, "window is empty"),
    ({"start": 1000, "stop": 2000}, 400, "Stop time is earlier than current time."),
    ({"start": LATER, "stop": LATER + 7200}, 400, "longer than this device's capture length limit of 3600 s"),
    ({"start": LATER + 400 * 86400, "stop": LATER + 400 * 86400 + 5}, 400, "366 days"),
    ({"start": LATER, "stop": LATER + 5, "observationpt": "eth9"}, 400, "unknown observation point 'eth9'"),
    ({"start": LATER, "stop": LATER + 5, "observationpt": "lo", "observationPt": "x"}, 400, "name different"),
    ({"start": LATER, "stop": LATER + 5, "id": "../etc"}, 400, "bad 'id'"),
    ({"start": LATER, "stop": LATER + 5, "id": ".."}, 400, "bad 'id'"),
    ({"start": LATER, "stop": LATER + 5, "id": "a" * 129}, 400, "bad 'id'"),
    ({"start": LATER, "stop": LATER + 5, "filter": "port 99999"}, 400, "invalid BPF filter"),
    ({"start": LATER, "stop": LATER + 5, "filter": "-w /etc/passwd"}, 400, "invalid BPF filter"),
    ({"start": LATER, "stop": LATER + 5, "snaplen": 10}, 400, "'snaplen' must be between 64 and 262144"),
    ({"start": LATER, "stop": LATER + 5, "snaplen": "x"}, 400, "whole number"),
]


@pytest.mark.parametrize(("params", "status", "fragment"), BAD)
def test_bad_capture_requests_change_nothing(client: TestClient, params: dict, status: int, fragment: str) -> None:
    before = ids(client)
    r = client.get("/capture/ethernet", params=params, headers=headers())
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "error" and fragment in body["msg"]
    assert ids(client) == before


def test_more_bad_requests(client: TestClient) -> None:
    ok = {"start": LATER, "stop": LATER + 5}
    cases = [
        (client.get("/capture/video", params=ok, headers=headers()), 400, "unknown capture type 'video'"),
        (client.get("/capture/linkstats", params={**ok, "filter": "udp"}, headers=headers()), 400,
         "option 'filter' does not apply to linkstats"),
        (client.get("/capture/linkstats", params={**ok, "period": 0}, headers=headers()), 400, "'period'"),
        (client.get("/capture/ethernet", params=ok, headers=headers("tok-alice-reader")), 403, "member or admin"),
        (client.post("/captures", json={"type": "ethernet", **ok, "colour": 1}, headers=headers()), 400, "colour"),
        (client.post("/captures", json={**ok}, headers=headers()), 400, "type"),
        (client.post("/captures", content=b"not json", headers=headers()), 400, ""),
        (client.post("/captures", json=[1, 2], headers=headers()), 400, ""),
        (client.get("/retrieve", headers=headers()), 400, "id"),
        (client.get("/retrieve?id=nothing", headers=headers()), 404, "no capture with id 'nothing'"),
        (client.get("/nowhere", headers=headers()), 404, "Not Found"),
        (client.put("/captures", headers=headers()), 405, "Method Not Allowed"),
    ]
    for r, status, fragment in cases:
        assert r.status_code == status, r.text
        assert r.json()["status"] == "error" and fragment in r.json()["msg"]
    assert ids(client) == []


def test_original_client_call_and_lifecycle(client: TestClient) -> None:
    r = client.get("/capture/linkstats", headers=headers("tok-alice"),
                   params={"id": "linkstats_lo_1_2", "start": LATER, "stop": LATER + 60, "observationPt": "lo"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert (body["status"], body["msg"], body["id"]) == ("success", "", "linkstats_lo_1_2")
    assert (body["startTime"], body["stopTime"], body["duration"], body["state"]) == (LATER, LATER + 60, 60,
                                                                                       "scheduled")
    assert "interface" not in body  # members do not see interfaces
    dup = client.post("/captures", json={"type": "linkstats", "id": "linkstats_lo_1_2", "start": LATER + 100,
                                         "stop": LATER + 160}, headers=headers("tok-alice"))
    assert dup.status_code == 409 and "already used" in dup.json()["msg"]  # the original's call: a fresh id
    r = client.get("/retrieve?id=linkstats_lo_1_2", headers=headers("tok-alice"))
    assert r.status_code == 409 and "has not started yet" in r.json()["msg"]
    # another project neither sees, retrieves nor deletes it; the admin does
    assert client.get("/captures", headers=headers("tok-bob")).json()["captures"] == []
    for method, path in (("get", "/captures/linkstats_lo_1_2"), ("get", "/retrieve?id=linkstats_lo_1_2"),
                         ("delete", "/captures/linkstats_lo_1_2")):
        assert getattr(client, method)(path, headers=headers("tok-bob")).status_code == 404
    assert client.get("/captures/linkstats_lo_1_2", headers=headers()).json()["capture"]["interface"] == "lo"
    assert client.delete("/captures/linkstats_lo_1_2", headers=headers("tok-alice-reader")).status_code == 403
    # DELETE cancels a scheduled capture, then a second DELETE removes it
    r = client.delete("/captures/linkstats_lo_1_2", headers=headers("tok-alice"))
    assert r.status_code == 200 and r.json()["capture"]["state"] == "cancelled"
    assert "cancelled by alice" in r.json()["capture"]["reason"]
    assert client.delete("/captures/linkstats_lo_1_2", headers=headers("tok-alice")).status_code == 204
    assert ids(client) == []


def test_post_captures_and_past_start(client: TestClient) -> None:
    r = client.post("/captures", json={"type": "linkstats", "start": 1, "stop": time.time() + 3000,
                                       "period": 500}, headers=headers())
    assert r.status_code == 201
    body = r.json()
    assert body["msg"] == "Changed startTime to now because it was in the past."
    assert abs(body["startTime"] - time.time()) < 5 and body["options"] == {"period": 500}
    assert len(body["id"]) == 36  # a UUID
    client.delete(f"/captures/{body['id']}", headers=headers())


def test_concurrency_limit(make_client) -> None:
    client = make_client(max_concurrent_captures=1)
    first = client.get("/capture/linkstats", params={"start": LATER, "stop": LATER + 10}, headers=headers())
    assert first.status_code == 200
    r = client.get("/capture/linkstats", params={"start": LATER + 5, "stop": LATER + 15}, headers=headers())
    assert r.status_code == 429 and "too many concurrent captures" in r.json()["msg"]
    assert len(ids(client)) == 1
    r = client.get("/capture/linkstats", params={"start": LATER + 10, "stop": LATER + 20}, headers=headers())
    assert r.status_code == 200  # back to back is not overlapping
