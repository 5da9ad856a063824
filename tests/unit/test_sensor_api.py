"""Sensor points through the in-process app: /capabilities, requests (kinds of point kept apart, projects,
periods, a driver that cannot capture), a simulated capture retrieved as CSV and as the client's DataFrame."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opentap.client import frames
from opentap.sensors import phidget

from ..support.apicalls import headers, wait_state


def sensors_toml(tmp_path: Path) -> str:
    value = tmp_path / "temp1_input"
    value.write_text("45000\n")
    value.chmod(0o644)
    secret = tmp_path / "secret"
    secret.write_text("1234\n")
    secret.chmod(0o600)
    return f"""
[sensors.cpu_temp]
driver = "sysfs"
path = "{value}"
kind = "temperature"
scale = 0.001
unit = "°C"

[sensors.demo_motion]
driver = "simulated"
kind = "motion"
projects = ["bob"]

[sensors.rack_temp]
driver = "phidget22"
serial = 123456
port = 3
part = 1124

[sensors.leak]
driver = "sysfs"
path = "{secret}"
kind = "pin"
"""


@pytest.fixture
def api(make_client: Callable[..., TestClient], tmp_path: Path) -> TestClient:
    return make_client(extra_toml=sensors_toml(tmp_path))


def test_capabilities_list_sensor_points(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    caps = api.get("/capabilities", headers=headers()).json()
    assert "sensor" in caps["capture_types"] and caps["types"]["sensor"]["observation_point_kind"] == "sensor"
    assert caps["sensor_observation_pts"] == ["cpu_temp", "demo_motion", "rack_temp", "leak"]
    assert caps["network_observation_pts"] == ["lo"]
    cpu, motion, rack, leak = caps["observation_points"]["sensor"]
    assert cpu["columns"] == [{"name": "temperature", "kind": "temperature", "unit": "°C", "simulated": False,
                               "sensor": "cpu_temp", "driver": "sysfs", "path": cpu["columns"][0]["path"]}]
    assert cpu["available"] and motion["simulated"] and rack["available"]  # the library is installed here
    assert not leak["available"] and "not world-readable" in leak["why"]
    member = api.get("/capabilities", headers=headers("tok-alice")).json()
    assert member["sensor_observation_pts"] == ["cpu_temp", "rack_temp", "leak"]  # demo_motion is bob's
    assert member["observation_points"]["sensor"][0]["columns"] == [
        {"name": "temperature", "kind": "temperature", "unit": "°C", "simulated": False}]  # no path for members
    monkeypatch.setattr(phidget, "_library", (None, phidget.MISSING))  # as without the Phidget22 package
    rack = api.get("/capabilities", headers=headers()).json()["observation_points"]["sensor"][2]
    assert rack == {**rack, "available": False, "why": f"Phidget 1124 on serial 123456 port 3: {phidget.MISSING}"}
    later = int(time.time()) + 600
    r = api.get("/capture/sensor", params={"start": later, "stop": later + 5, "observationPt": "rack_temp"},
                headers=headers())
    assert r.status_code == 400 and "cannot capture now" in r.json()["msg"] and "pip install" in r.json()["msg"]


BAD = [  # (type, params, who, fragment)
    ("sensor", {"observationPt": "lo"}, "tok-admin", "unknown observation point 'lo' (available: cpu_temp"),
    ("ethernet", {"observationPt": "cpu_temp"}, "tok-admin", "unknown observation point 'cpu_temp' (available: lo"),
    ("linkstats", {"observationPt": "cpu_temp"}, "tok-admin", "unknown observation point"),
    ("sensor", {"observationPt": "demo_motion"}, "tok-alice", "unknown observation point 'demo_motion'"),
    ("sensor", {"observationPt": "cpu_temp", "period": 5}, "tok-admin", "'period' must be between 10 and"),
    ("sensor", {"observationPt": "cpu_temp", "filter": "tcp"}, "tok-admin", "does not apply to sensor"),
    ("sensor", {"observationPt": "leak"}, "tok-admin", "not world-readable"),
]


@pytest.mark.parametrize(("type_name", "params", "token", "fragment"), BAD)
def test_bad_sensor_requests(api: TestClient, type_name: str, params: dict, token: str, fragment: str) -> None:
    later = int(time.time()) + 600
    r = api.get(f"/capture/{type_name}", params={"start": later, "stop": later + 5, **params}, headers=headers(token))
    assert r.status_code == 400 and fragment in r.json()["msg"], r.text


def test_a_simulated_capture_end_to_end(api: TestClient) -> None:
    start = time.time() + 0.3
    r = api.post("/captures", json={"type": "sensor", "start": start, "stop": start + 1.0, "period": 100,
                                    "observationpt": "demo_motion"}, headers=headers("tok-bob"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert "simulated" in body["msg"] and body["options"] == {"period": 100}  # the sensors stay out of sight
    cap = wait_state(api, body["id"], ("complete", "truncated", "failed"), token="tok-bob")
    assert cap["state"] == "complete", cap
    assert cap["packets"] == 10 and cap["stats"]["samples"] == 10 and cap["stats"]["missed_samples"] == 0
    data = api.get("/retrieve", params={"id": body["id"]}, headers=headers("tok-bob"))
    assert data.headers["content-type"] == "text/csv"
    lines = data.text.splitlines()
    assert lines[0] == "time,motion" and len(lines) == 11
    first = round(start * 1000)
    assert [int(line.split(",")[0]) for line in lines[1:]] == [first + 100 * k for k in range(10)]
    df = frames.read_frame("sensor", iter([data.content]))
    assert list(df.columns) == ["time", "motion"] and str(df["time"].dtype) == "datetime64[ns, UTC]"
    assert df["motion"].dtype == "float64" and df["motion"].between(0, 1000).all()


def test_a_sysfs_capture_fails_when_its_file_is_gone(api: TestClient, tmp_path: Path) -> None:
    start = time.time() + 0.3
    r = api.post("/captures", json={"type": "sensor", "start": start, "stop": start + 1, "observationpt": "cpu_temp"},
                 headers=headers())
    assert r.status_code == 201
    os.unlink(tmp_path / "temp1_input")
    cap = wait_state(api, r.json()["id"], ("failed",))
    assert "temp1_input: No such file or directory" in cap["reason"]
