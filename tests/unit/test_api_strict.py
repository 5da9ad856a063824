"""Finding 9, from the attacker's side: values that Python's int()/float() or a lax model would have taken
(other scripts' digits, underscores, blanks, JSON true as a number, a repeated parameter's last value) are
400s that change nothing; a blank filter is no filter, and the answer says so."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from opentap.capture.plan import BLANK_FILTER_MSG

ADMIN, ALICE = ({"X-Auth-Token": t} for t in ("tok-admin", "tok-alice"))
LATER = int(time.time()) + 3600
ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.fixture
def api(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def captures(api: TestClient) -> list[dict[str, Any]]:
    return api.get("/captures", headers=ADMIN).json()["captures"]


def refused(r: Any, *words: str) -> None:
    assert r.status_code == 400, r.text
    assert r.json()["status"] == "error" and all(w in r.json()["msg"] for w in words), r.json()


def lenient_forms(n: int) -> list[str]:
    text = str(n)
    return [text.translate(ARABIC), f"{text[:2]}_{text[2:]}", f" {text}", f"{text} ", f"+{text}", f"{text}\n",
            f"{n}e0", "0x" + format(n, "x")]


@pytest.mark.parametrize("field", ["start", "stop"])
def test_times_are_ascii_digits(api: TestClient, field: str) -> None:
    good = {"start": str(LATER), "stop": str(LATER + 5)}
    for form in lenient_forms(int(good[field])):
        refused(api.get("/capture/ethernet", params={**good, field: form}, headers=ALICE), f"'{field}'", "ASCII")
    assert captures(api) == []
    fraction = api.get("/capture/ethernet", params={**good, "stop": f"{LATER + 5}.25"}, headers=ALICE)
    assert fraction.status_code == 200 and fraction.json()["stopTime"] == LATER + 5.25, fraction.text


@pytest.mark.parametrize(("kind", "option", "value"), [("ethernet", "snaplen", 100), ("linkstats", "period", 100)])
def test_options_are_ascii_digits(api: TestClient, kind: str, option: str, value: int) -> None:
    window = {"start": LATER, "stop": LATER + 5}
    for form in lenient_forms(value):
        refused(api.get(f"/capture/{kind}", params={**window, option: form}, headers=ALICE), f"'{option}'")
    for wrong in (str(value), float(value), True):  # a JSON body's number is a JSON integer
        refused(api.post("/captures", json={"type": kind, **window, option: wrong}, headers=ALICE), option)
    assert captures(api) == []
    ok = api.get(f"/capture/{kind}", params={**window, option: str(value)}, headers=ALICE)
    assert ok.status_code == 200 and ok.json()["options"] == {option: value}, ok.text


def test_json_booleans_are_not_times_and_numbers_are_not_booleans(api: TestClient) -> None:
    for body in ({"start": True, "stop": LATER + 5}, {"start": LATER, "stop": False},
                 {"start": LATER, "stop": LATER + 5, "keep_packets": 1},
                 {"start": LATER, "stop": LATER + 5, "keep_packets": "true"},
                 {"start": LATER, "stop": LATER + 5, "observationpt": 0}):
        refused(api.post("/captures", json={"type": "netflow", **body}, headers=ALICE))
    refused(api.get("/capture/netflow", params={"start": LATER, "stop": LATER + 5, "keep_packets": "on"},
                    headers=ALICE), "keep_packets")
    assert captures(api) == []


@pytest.mark.parametrize("path", ["/capture/ethernet", "/captures", "/retrieve", "/capabilities", "/"])
def test_a_repeated_parameter_is_a_400(api: TestClient, path: str) -> None:
    query = f"start={LATER}&stop={LATER + 5}&stop={LATER + 9}&id=a&id=b&state=x&state=y&format=csv&format=pcap"
    refused(api.get(f"{path}?{query}", headers=ALICE), "more than once")
    refused(api.get(f"{path}?observationpt=lo&observationpt=lo", headers=ALICE), "'observationpt'")
    assert captures(api) == []


def test_neutron_routes_keep_repeated_parameters(api: TestClient) -> None:
    port = api.post("/v2.0/ports", headers=ADMIN, json={"port": {"name": "a", "binding:profile": {
        "interface": "lo"}}}).json()["port"]
    r = api.get("/v2.0/ports?fields=id&fields=name&name=a&name=b&sort_key=name&sort_dir=asc&sort_key=id&sort_dir=asc",
                headers=ADMIN)
    assert r.status_code == 200 and r.json() == {"ports": [{"id": port["id"], "name": "a"}]}, r.text


@pytest.mark.parametrize("blank", [" ", "   ", "\t", " \n "])
def test_a_blank_filter_is_no_filter_and_says_so(api: TestClient, blank: str) -> None:
    r = api.get("/capture/ethernet", params={"start": LATER, "stop": LATER + 5, "filter": blank}, headers=ALICE)
    assert r.status_code == 200 and r.json()["options"] == {} and BLANK_FILTER_MSG in r.json()["msg"], r.text
    r = api.post("/captures", json={"type": "ethernet", "start": LATER, "stop": LATER + 5, "filter": blank},
                 headers=ALICE)
    assert r.status_code == 201 and r.json()["options"] == {} and BLANK_FILTER_MSG in r.json()["msg"], r.text
    stored = {c["id"]: c["options"] for c in captures(api)}
    assert list(stored.values()) == [{}, {}]
    r = api.get("/capture/ethernet", params={"start": LATER, "stop": LATER + 5, "filter": " tcp "}, headers=ALICE)
    assert r.json()["options"] == {"filter": " tcp "} and "blank" not in r.json()["msg"], r.text


def neutron_400(r: Any, words: str = "") -> None:
    assert r.status_code == 400, r.text
    assert words in r.json()["NeutronError"]["message"], r.json()


def test_taas_numbers_booleans_and_ids_are_strict(api: TestClient) -> None:
    for form in lenient_forms(10) + ["", "-"]:
        neutron_400(api.get("/v2.0/ports", params={"limit": form}, headers=ALICE), "is not an integer")
    for flag in ("true", 1, 0, "1", None, "yes"):
        r = api.post("/v2.0/ports", headers=ADMIN, json={"port": {"admin_state_up": flag,
                                                                  "binding:profile": {"interface": "lo"}}})
        neutron_400(r, "Invalid input for admin_state_up")
    port = api.post("/v2.0/ports", headers=ADMIN, json={"port": {"project_id": "alice", "binding:profile": {
        "interface": "lo"}}}).json()["port"]
    digits = "".join(c.translate(ARABIC) if c.isdigit() else c for c in port["id"])
    for wrong in (digits, f" {port['id']}", "{" + port["id"] + "}", "urn:uuid:" + port["id"], port["id"] + "\n"):
        if wrong == port["id"]:
            continue
        neutron_400(api.post("/v2.0/taas/tap_services", headers=ALICE, json={"tap_service": {"port_id": wrong}}),
                    "Invalid input for port_id")
    assert api.get("/v2.0/taas/tap_services", headers=ADMIN).json() == {"tap_services": []}
    upper = api.post("/v2.0/taas/tap_services", headers=ALICE, json={"tap_service": {"port_id": port["id"].upper()}})
    assert upper.status_code == 201 and upper.json()["tap_service"]["port_id"] == port["id"], upper.text
    # query strings are text: Neutron's filters still take true/false/1/0
    assert api.get("/v2.0/ports?admin_state_up=1", headers=ADMIN).json()["ports"][0]["id"] == port["id"]
