"""The rings' API: admins only, every role and project (GET, PUT, DELETE /rings), bad input as 400s, the choice
kept on disk (0600); /capabilities telling each caller how far back the rings of its own points reach; a window
in the past answered from a ring, refused with the ring's reach when older, moved to now on a point without one.
Rings that record need tcpdump: tests/system/test_rings.py. Here a ring is one a previous run left on disk."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from ..support.apicalls import headers, wait_state

POINTS = {"lo": "lo", "bobs": '{interface = "lo", projects = ["bob"]}'}
MEMBERS = ("tok-alice", "tok-alice-reader", "tok-bob")


def _left_ring(data_dir: Path, point: str, start: float, stop: float) -> None:
    """What a ring that recorded from start to stop and was then turned off leaves behind (no blocks: no traffic)."""
    directory = data_dir / "rings" / point
    directory.mkdir(parents=True)
    (directory / "ring.json").write_text(json.dumps({"runs": [{"run": 1, "start": start, "stop": stop}],
                                                     "evicted_through": 0.0}))


@pytest.fixture
def api(make_client, tmp_path: Path):
    now = time.time()
    _left_ring(tmp_path / "data", "lo", now - 600, now - 60)
    _left_ring(tmp_path / "data", "bobs", now - 300, now - 60)
    return make_client(POINTS, data_dir="data")


def test_rings_are_admin_data(api) -> None:
    r = api.get("/rings", headers=headers())
    assert r.status_code == 200
    rings = {x["point"]: x for x in r.json()["rings"]}
    assert set(rings) == {"lo", "bobs"} and rings["lo"]["interface"] == "lo" and not rings["lo"]["recording"]
    assert rings["lo"]["ring_since"] == pytest.approx(time.time() - 600, abs=5)
    for token in MEMBERS:  # the same answer whatever the point: a member learns nothing of rings here
        assert api.get("/rings", headers=headers(token)).status_code == 403
        for point in ("lo", "bobs", "nope"):
            assert api.put(f"/rings/{point}", json={"ring_mb": 0}, headers=headers(token)).status_code == 403
            assert api.delete(f"/rings/{point}", headers=headers(token)).status_code == 403
    assert api.get("/rings").status_code == 401
    assert api.put("/rings/lo", json={"ring_mb": 0}).status_code == 401
    assert api.delete("/rings/lo").status_code == 401


@pytest.mark.parametrize("body", [{"ring_mb": 5}, {"ring_mb": -1}, {"ring_mb": True}, {"ring_mb": "64"}, {},
                                  {"ring_mb": 64, "more": 1}, {"ring_mb": 1e300}, [64]])
def test_bad_ring_requests_are_400(api, body: object) -> None:
    r = api.put("/rings/lo", json=body, headers=headers())
    assert r.status_code == 400 and r.json()["status"] == "error"


def test_unknown_point_is_404_for_admins(api) -> None:
    assert api.put("/rings/nope", json={"ring_mb": 0}, headers=headers()).status_code == 404
    assert api.delete("/rings/nope", headers=headers()).status_code == 404


def test_turning_off_is_kept_and_purge_deletes(api, tmp_path: Path) -> None:
    r = api.put("/rings/lo", json={"ring_mb": 0}, headers=headers())
    assert r.status_code == 200 and r.json()["ring"]["ring_mb"] == 0 and not r.json()["ring"]["recording"]
    settings = tmp_path / "data" / "rings" / "settings.json"
    assert json.loads(settings.read_text()) == {"lo": 0}
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    assert r.json()["ring"]["ring_since"] is not None  # off keeps what it recorded
    assert api.delete("/rings/lo", headers=headers()).status_code == 204
    assert not (tmp_path / "data" / "rings" / "lo").exists()
    caps = api.get("/capabilities", headers=headers()).json()
    assert {p["name"]: p["ring_since"] for p in caps["observation_points"]["network"]}["lo"] is None


def test_capabilities_say_how_far_back_each_callers_ring_reaches(api) -> None:
    admin = {p["name"]: p for p in api.get("/capabilities", headers=headers()).json()["observation_points"]["network"]}
    assert admin["lo"]["ring_since"] == pytest.approx(time.time() - 600, abs=5)
    assert admin["bobs"]["ring_since"] == pytest.approx(time.time() - 300, abs=5)
    alice = api.get("/capabilities", headers=headers("tok-alice")).json()["observation_points"]["network"]
    assert [p["name"] for p in alice] == ["lo"] and "interface" not in alice[0]
    bob = api.get("/capabilities", headers=headers("tok-bob")).json()["observation_points"]["network"]
    assert {p["name"] for p in bob} == {"lo", "bobs"}


def _past(api, token: str, point: str, ago: float, length: float = 10):
    now = time.time()
    return api.get("/capture/ethernet", headers=headers(token),
                   params={"start": f"{now - ago:.3f}", "stop": f"{now - ago + length:.3f}", "observationpt": point})


def test_a_window_older_than_the_ring_says_how_far_back_it_reaches(api) -> None:
    r = _past(api, "tok-bob", "bobs", 400)
    assert r.status_code == 400
    assert "reaches back to" in r.json()["msg"] and "ring_since" in r.json()["msg"]
    assert _past(api, "tok-alice", "bobs", 200).status_code == 400  # not alice's point: unknown to her
    assert "unknown observation point" in _past(api, "tok-alice", "bobs", 200).json()["msg"]
    assert _past(api, "tok-alice-reader", "lo", 200).status_code == 403
    r = api.get("/capture/ethernet", headers=headers("tok-bob"), params={
        "start": int(time.time()) - 200, "stop": int(time.time()) - 190, "observationpt": "bobs", "snaplen": 100})
    assert r.status_code == 400 and "snaplen" in r.json()["msg"]
    r = api.get("/capture/ethernet", headers=headers(), params={
        "start": int(time.time()) - 200, "stop": int(time.time()) - 190, "observationpt": "bobs",
        "exclude_device_traffic": "false"})
    assert r.status_code == 400 and "own API and SSH traffic" in r.json()["msg"]


def test_a_past_window_is_answered_from_the_ring_as_the_projects_own_capture(api) -> None:
    r = _past(api, "tok-bob", "bobs", 200)
    assert r.status_code == 200, r.text
    cap = r.json()
    assert cap["options"]["from_ring"] is True and cap["startTime"] < time.time() - 150 and "Changed" not in cap["msg"]
    done = wait_state(api, cap["id"], ("complete", "truncated", "failed"), token="tok-bob")
    assert done["state"] == "complete" and done["packets"] == 0 and done["project_id"] == "bob", done
    assert api.get(f"/captures/{cap['id']}", headers=headers("tok-alice")).status_code == 404
    # the part of a window after the ring stopped recording is a gap, and said to be one
    r = _past(api, "tok-bob", "bobs", 70, 30)
    late = wait_state(api, r.json()["id"], ("complete", "truncated", "failed"), token="tok-bob")
    assert late["state"] == "truncated" and "the ring did not record from" in late["reason"], late


def test_a_point_without_a_ring_moves_a_past_start_to_now(make_client) -> None:
    api = make_client({"lo": "lo"})
    r = _past(api, "tok-alice", "lo", 200, 400)
    assert r.status_code == 200 and "Changed startTime to now" in r.json()["msg"]
    assert "from_ring" not in r.json()["options"]
