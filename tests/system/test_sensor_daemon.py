"""Sensor captures through a live daemon: sysfs-style files this test owns and changes during the window, a
simulated point, a Phidget that is not there (the real Phidget22 library, no hardware), the original client's
way of reading the CSV, the Python client and the CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from opentap.client import Device

from ..support.daemon import Daemon, running

PERIOD = 100


def set_value(path: Path, raw: int) -> None:
    """As a driver's file changes: the whole value at once (written aside, renamed over the old one)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(f"{raw}\n")
    tmp.chmod(0o444)
    os.replace(tmp, path)


@pytest.fixture
def sysfs_dir(tmp_path: Path) -> Path:
    d = tmp_path / "sys" / "class" / "hwmon" / "hwmon0"
    d.mkdir(parents=True)
    set_value(d / "temp1_input", 21000)
    set_value(d / "in0_input", 1200)
    return d


@pytest.fixture
def daemon(tmp_path: Path, sysfs_dir: Path) -> Iterator[Daemon]:
    sensors = f"""
[sensors.rack_temp]
driver = "sysfs"
path = "{sysfs_dir / 'temp1_input'}"
kind = "temperature"
scale = 0.001
unit = "°C"
point = "rack"

[sensors.rack_volts]
driver = "sysfs"
path = "{sysfs_dir / 'in0_input'}"
kind = "voltage"
scale = 0.001
offset = 0.5
unit = "V"
point = "rack"

[sensors.demo_motion]
driver = "simulated"
kind = "motion"

[sensors.door]
driver = "phidget22"
serial = 123456
port = 3
part = 1124
"""
    (tmp_path / "dev").mkdir()
    # auth none on loopback: the original's clients send no token
    with running(tmp_path / "dev", auth="none", max_concurrent_captures=8, extra_toml=sensors) as d:
        yield d


def schedule(d: Daemon, point: str, start: float, stop: float, period: int = PERIOD) -> dict:
    r = httpx.get(f"{d.url}/capture/sensor", params={"start": start, "stop": stop, "observationPt": point,
                                                     "period": period}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_sysfs_rows_follow_the_files_on_the_schedule(daemon: Daemon, sysfs_dir: Path, tmp_path: Path) -> None:
    start = round(time.time() + 1.0, 3)
    stop = start + 3.0
    first, second = schedule(daemon, "rack", start, stop), schedule(daemon, "rack", start, stop)  # one channel
    assert set(first) >= {"status", "msg", "id", "startTime", "stopTime", "duration"} and first["duration"] == 3
    changes = []
    for at, temp, volts in ((start + 1.0, 23500, 1250), (start + 2.0, 25000, 1300)):
        time.sleep(max(0.0, at - time.time()))
        set_value(sysfs_dir / "temp1_input", temp)
        set_value(sysfs_dir / "in0_input", volts)
        changes.append(time.time())
        if len(changes) == 1:  # a retrieve during the window gives the rows so far
            partial = httpx.get(f"{daemon.url}/retrieve", params={"id": first["id"]}, timeout=10)
            assert partial.headers["x-opentap-partial"] == "true" and partial.text.startswith("time,temperature,")
            assert 5 <= len(partial.text.splitlines()) - 1 <= 12
    for cap in (first, second):
        final = daemon.wait(cap["id"], ("complete", "truncated", "failed"), timeout=15)
        assert final["state"] == "complete", final
        assert final["stats"]["samples"] == 30 and final["stats"]["missed_samples"] == 0
        assert final["stats"]["lateness_p99_us"] < 50_000
    rows = httpx.get(f"{daemon.url}/retrieve", params={"id": first["id"]}, timeout=10).text.splitlines()
    assert rows[0] == "time,temperature,voltage" and len(rows) == 31
    times = [int(r.split(",")[0]) for r in rows[1:]]
    assert times == [round(start * 1000) + PERIOD * k for k in range(30)]  # on the schedule, none drifting
    expected = {0: ("21", "1.7"), 1: ("23.5", "1.75"), 2: ("25", "1.8")}  # raw * scale + offset
    margin = 0.15  # a sample taken around a change may see either value
    for line in rows[1:]:
        t, temp, volts = line.split(",")
        at = int(t) / 1000
        phase = sum(at >= c for c in changes)
        if all(abs(at - c) > margin for c in changes):
            assert (temp, volts) == expected[phase], (line, changes)
    other = httpx.get(f"{daemon.url}/retrieve", params={"id": second["id"]}, timeout=10).text.splitlines()
    assert [r.split(",")[0] for r in other] == [r.split(",")[0] for r in rows]


def test_the_original_clients_read_and_the_simulated_point(daemon: Daemon) -> None:
    start = time.time() + 0.5
    cap = schedule(daemon, "demo_motion", start, start + 2, period=250)
    assert "simulated" in cap["msg"]
    daemon.wait(cap["id"], ("complete",), timeout=15)
    # the original client (demo/opentap.py's retrieve): the exact media type, read_csv, time in ms
    resp = httpx.get(f"{daemon.url}/retrieve?id={cap['id']}", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "text/csv"
    sensor_data = pd.read_csv(io.StringIO(resp.text))
    sensor_data["time"] = pd.to_datetime(sensor_data["time"], unit="ms", utc=True)
    assert list(sensor_data.columns) == ["time", "motion"] and len(sensor_data) == 8
    assert (sensor_data["time"].diff().dropna() == pd.Timedelta(milliseconds=250)).all()
    caps = httpx.get(f"{daemon.url}/capabilities", timeout=10).json()
    assert "sensor" in caps["capture_types"] and caps["sensor_observation_pts"] == ["rack", "demo_motion", "door"]
    # the same capture through this project's client: UTC times, float columns
    df = Device(daemon.url).get_capture(cap["id"]).retrieve()
    assert str(df["time"].dtype) == "datetime64[ns, UTC]" and df["motion"].dtype == "float64"
    assert (df["time"] == sensor_data["time"]).all() and (df["motion"] == sensor_data["motion"]).all()


def test_a_phidget_that_is_not_there_fails_in_the_stated_time(daemon: Daemon) -> None:
    cap = schedule(daemon, "door", time.time(), time.time() + 30)
    final = daemon.wait(cap["id"], ("complete", "truncated", "failed"), timeout=15)
    assert final["state"] == "failed" and final["packets"] == 0
    assert final["reason"] == "Phidget 1124 on serial 123456 port 3 not attached within 5 s"
    assert 5.0 <= final["finished_at"] - final["started_at"] < 6.5
    r = httpx.get(f"{daemon.url}/retrieve", params={"id": cap["id"]}, timeout=10)
    assert r.status_code == 409 and "not attached within 5 s" in r.json()["msg"]


def test_the_cli_saves_a_sensor_capture(daemon: Daemon, tmp_path: Path) -> None:
    caps = subprocess.run([sys.executable, "-m", "opentap", "capabilities", "--url", daemon.url], capture_output=True,
                          text=True, timeout=60)
    assert caps.returncode == 0 and "Sensor points:" in caps.stdout, caps.stderr
    assert "temperature (°C), voltage (V)" in caps.stdout and "simulated" in caps.stdout
    out = tmp_path / "temp.csv"
    r = subprocess.run([sys.executable, "-m", "opentap", "capture", "sensor", "--url", daemon.url, "--point", "rack",
                        "--period", "500", "--duration", "2s", "-o", str(out)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "time,temperature,voltage" and len(lines) == 5 and lines[1].endswith(",21,1.7")
    parquet = tmp_path / "temp.parquet"
    r = subprocess.run([sys.executable, "-m", "opentap", "capture", "sensor", "--url", daemon.url, "--point", "rack",
                        "--period", "500", "--duration", "1s", "-o", str(parquet)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    df = pd.read_parquet(parquet)
    assert list(df.columns) == ["time", "temperature", "voltage"] and len(df) == 2 and df["voltage"].iloc[0] == 1.7


@pytest.mark.root  # the demo's netflow capture runs tcpdump
def test_the_demo_draws_a_sensor_capture(daemon: Daemon, tmp_path: Path) -> None:
    png, sensors_png = tmp_path / "flows.png", tmp_path / "sensors.png"
    r = subprocess.run([sys.executable, str(Path(__file__).parents[2] / "examples" / "demo.py"), "--url", daemon.url,
                        "--point", "lo", "--duration", "3", "--png", str(png), "--sensor-point", "demo_motion",
                        "--sensor-period", "250", "--sensor-png", str(sensors_png)],
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr
    assert "sensor readings at" in r.stdout and "(simulated)" in r.stdout and f"wrote {sensors_png}" in r.stdout
    assert sensors_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and sensors_png.stat().st_size > 10_000


def test_a_capture_resumed_after_kill9_keeps_its_rows_and_schedule(daemon: Daemon) -> None:
    start = round(time.time() + 0.5, 3)
    cap = schedule(daemon, "demo_motion", start, start + 12, period=100)
    daemon.wait(cap["id"], ("running",))
    time.sleep(1.5)
    daemon.kill9()
    time.sleep(1.0)
    daemon.start()
    assert daemon.capture(cap["id"])["state"] == "running"  # resumed: a new segment
    final = daemon.wait(cap["id"], ("complete", "truncated", "failed"), timeout=20)
    assert final["state"] == "truncated" and "the daemon was down from" in final["reason"], final
    lines = httpx.get(f"{daemon.url}/retrieve", params={"id": cap["id"]}, timeout=10).text.splitlines()
    assert lines[0] == "time,motion" and lines.count("time,motion") == 1  # one file, one header
    offsets = [int(line.split(",")[0]) - round(start * 1000) for line in lines[1:]]
    assert offsets == sorted(set(offsets)) and all(t % 100 == 0 for t in offsets)
    assert offsets[0] == 0 and offsets[-1] == 11900 and 40 <= len(offsets) < 110  # both segments, a gap between
    assert final["packets"] == len(offsets) and final["stats"]["samples"] == len(offsets)
