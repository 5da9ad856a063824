"""The sensor drivers and the sampler's bookkeeping, without a daemon: the sysfs driver's rules on what it reads,
the schedule, lateness and gaps, channels shared by captures, and the sampler driven by sources that attach
late, detach, never attach, or stall."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from opentap.capture import sensor, storage
from opentap.capture.sampling import Gaps, Lateness, Schedule
from opentap.configsensors import SensorSpec
from opentap.sensors import hub as sensor_hub
from opentap.sensors import simulated, sysfs
from opentap.sensors.base import SensorError


def value_file(path: Path, text: str, mode: int = 0o644) -> Path:
    """Write a whole value the way a writer should: to a new name, renamed over the old one."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    tmp.chmod(mode)
    os.replace(tmp, path)
    return path


def test_sysfs_reads_one_number_per_sample_and_follows_a_replaced_file(tmp_path: Path) -> None:
    f = value_file(tmp_path / "temp1_input", "45123\n")
    src = sysfs.SysfsSource(str(f))
    src.open()
    assert src.read(0) == 45123.0
    value_file(f, "46000\n")
    assert src.read(0) == 46000.0
    value_file(f, "N/A\n")
    assert src.read(0) is None and "not a number" in src.why()
    f.unlink()
    assert src.read(0) is None and "No such file" in src.why()
    value_file(f, "-12.5e1")
    assert src.read(0) == -125.0
    src.close()


def test_sysfs_refuses_what_it_must_not_read(tmp_path: Path) -> None:
    secret = value_file(tmp_path / "token", "123456\n", mode=0o600)
    assert "not world-readable" in (sysfs.check(str(secret)) or "")
    with pytest.raises(SensorError, match="not world-readable"):
        sysfs.SysfsSource(str(secret)).open()  # root could open it; the driver still refuses
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o644)
    started = time.monotonic()
    with pytest.raises(SensorError, match="not a regular file"):
        sysfs.SysfsSource(str(fifo)).open()  # refused without blocking on the FIFO
    assert time.monotonic() - started < 1
    assert "not a regular file" in (sysfs.check(str(tmp_path)) or "")
    assert "not an absolute path" in (sysfs.check("temp1_input") or "")
    assert sysfs.parse(b"1" * 80) is None and sysfs.parse(b"0x10") is None and sysfs.parse(b"nan") is None
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600


def test_the_schedule_never_drifts() -> None:
    t0 = int(time.time() * 1000)
    s = Schedule(t0, 10, t0 + 105)
    assert s.count == 11 and [s.at_ms(k) - t0 for k in (0, 1, 10)] == [0, 10, 100]
    assert s.due(s.mono(5)) == 5 and s.due(s.mono(5) - 0.0001) == 4 and s.due(s.mono(0) - 1) < 0
    assert s.mono(1000) - s.mono(0) == pytest.approx(10.0)


def test_lateness_percentiles_and_merge() -> None:
    a = Lateness()
    for us in [100] * 98 + [1500, 40_000]:
        a.add(us / 1e6)
    assert a.percentile(50) == 150 and a.percentile(99) == 1550 and a.max_us == 40_000
    b = Lateness()
    b.merge(json.loads(json.dumps(a.to_json())))
    b.add(0.5)  # beyond the histogram: the maximum stands for it
    assert b.max_us == 500_000 and b.percentile(100) == 500_000 and Lateness().percentile(99) == 0


def test_gaps_are_named_with_their_times_and_reason() -> None:
    g = Gaps(["Phidget 1124 on serial 1 port 3", "sensor 'x'"])
    for k in range(10):
        g.note(0, 1_700_000_000_000 + k * 100, 3 <= k <= 5, "detached")
        g.note(1, 1_700_000_000_000 + k * 100, False)
    assert g.empty == 3
    assert g.reasons() == ["Phidget 1124 on serial 1 port 3 gave no value at 2023-11-14T22:13:20.300Z to "
                           "2023-11-14T22:13:20.500Z (3 samples left empty): detached"]


class FakeSource:
    """A source that attaches after `attach_after` seconds (never: None), gives `values` in turn (None: none),
    and can stall once."""

    opened: list[FakeSource] = []

    def __init__(self, attach_after: float | None = 0.0, values: list[float | None] | None = None,
                 stall: float = 0.0, attach_timeout: float = 0.3) -> None:
        self.attach_after, self.values, self.stall = attach_after, list(values or [1.0]), stall
        self.min_period_ms, self.attach_timeout = 10, attach_timeout
        self.periods: list[int] = []
        self.closed = False
        self.reads = 0

    def open(self) -> None:
        self.t0 = time.monotonic()
        FakeSource.opened.append(self)

    def ready(self) -> bool:
        return self.attach_after is not None and time.monotonic() - self.t0 >= self.attach_after

    def not_ready(self) -> str:
        return "Phidget 1124 on serial 1 port 3 not attached within 0.3 s"

    def read(self, at: float) -> float | None:
        self.reads += 1
        if self.stall and self.reads == 3:
            time.sleep(self.stall)
        return self.values[min(self.reads - 1, len(self.values) - 1)]

    def why(self) -> str:
        return "detached"

    def set_period(self, ms: int) -> None:
        self.periods.append(ms)

    def warnings(self, period_ms: int) -> list[str]:
        return []

    def close(self) -> None:
        self.closed = True


SPEC = SensorSpec("rack_temp", "phidget22", "temperature", "°C", 1, 3, "1124")


def run(tmp_path: Path, source: FakeSource, period_ms: int = 20, seconds: float = 0.3,
        start_in: float = 0.05) -> tuple[sensor.SensorDriver, list[str], list[str]]:
    start = time.time() + start_in
    time.sleep(max(0.0, start - time.time()))
    driver = sensor.SensorDriver(tmp_path / "cap", [SPEC], period_ms, int(start * 1e9), int((start + seconds) * 1e9),
                                 hub=sensor_hub.Hub(lambda _spec: source))
    driver.start()
    deadline = start + seconds + 0.1  # a little past the window: the schedule itself ends it (samples in [start, stop))
    while time.time() < deadline and driver.alive():
        time.sleep(0.01)
    alive = driver.alive()
    problems = driver.stop()
    assert source.closed
    lines = (tmp_path / "cap" / sensor.FINAL).read_text().splitlines()
    if not alive:
        problems = [driver.failure(), *problems]
    return driver, lines, problems


def test_rows_sit_on_the_schedule(tmp_path: Path) -> None:
    driver, lines, problems = run(tmp_path, FakeSource(values=[21.5, 21.75]))
    assert lines[0] == "time,temperature" and problems == []
    times = [int(line.split(",")[0]) for line in lines[1:]]
    assert len(times) == 15 and all(b - a == 20 for a, b in zip(times, times[1:], strict=False))
    assert [line.split(",")[1] for line in lines[1:3]] == ["21.5", "21.75"]
    stats, lateness = sensor.segment_stats(tmp_path / "cap")
    assert stats == {"samples": 15, "missed_samples": 0, "empty_values": 0} and lateness.max_us < 20_000


def test_a_detached_sensor_leaves_empty_fields_and_a_gap_in_the_reason(tmp_path: Path) -> None:
    _driver, lines, problems = run(tmp_path, FakeSource(values=[20.0, 20.0, None, None, 21.0]))
    assert [line.split(",")[1] for line in lines[1:6]] == ["20", "20", "", "", "21"]
    assert len(problems) == 1 and problems[0].startswith("Phidget 1124 on serial 1 port 3 gave no value at ")
    assert problems[0].endswith("(2 samples left empty): detached")


def test_a_sensor_that_never_attaches_fails_the_capture_in_its_time(tmp_path: Path) -> None:
    started = time.monotonic()
    driver, lines, problems = run(tmp_path, FakeSource(attach_after=None), seconds=2)
    assert problems == ["Phidget 1124 on serial 1 port 3 not attached within 0.3 s"]
    assert 0.3 <= time.monotonic() - started < 1.0 and lines == ["time,temperature"] and driver.rows == 0


def test_a_late_attach_and_a_stall_are_missed_samples(tmp_path: Path) -> None:
    driver, lines, problems = run(tmp_path, FakeSource(attach_after=0.1, stall=0.1), seconds=0.5)
    assert driver.missed >= 5 + 4  # ~5 while attaching, ~5 during the stall
    assert problems[0].startswith(f"{driver.missed} of {driver.rows + driver.missed} samples were missed")
    times = [int(line.split(",")[0]) for line in lines[1:]]
    assert all((t - times[0]) % 20 == 0 for t in times)  # still on the schedule after skipping


def test_captures_of_one_sensor_share_its_channel(tmp_path: Path) -> None:
    source = FakeSource()
    h = sensor_hub.Hub(lambda _spec: source)
    a, b = h.acquire(SPEC, 1000), h.acquire(SPEC, 250)
    assert h.open_count() == 1 and a.source is b.source and source.periods == [1000, 250]
    b.release()
    assert source.periods[-1] == 1000 and not source.closed
    a.release()
    a.release()  # twice is once
    assert source.closed and h.open_count() == 0
    scaled = sensor_hub.Hub(lambda _spec: FakeSource(values=[45123.0])).acquire(
        SensorSpec("t", "sysfs", "temperature", path="/x", scale=0.001, offset=-1.0), 1000)
    assert scaled.read(0) == pytest.approx(44.123)


def test_the_simulated_signal_is_deterministic_and_plausible() -> None:
    src = simulated.SimulatedSource("temperature")
    assert [src.read(t) for t in (0, 1, 2)] == [src.read(t) for t in (0, 1, 2)]
    assert all(19 < simulated.signal("temperature", t) < 25 for t in range(0, 3600, 7))
    assert all(0 <= simulated.signal("motion", t / 10) <= 1000 for t in range(0, 600))


def test_a_resumed_capture_goes_on_in_its_file(tmp_path: Path) -> None:
    (tmp_path / sensor.FINAL).write_text("time,x\n1,2\n3,4\n5,")  # published by the engine; cut by a crash
    storage.append_to(tmp_path, sensor.HIDDEN, sensor.FINAL, "time,x\n").close()
    assert (tmp_path / sensor.HIDDEN).read_text() == "time,x\n1,2\n3,4\n" and not (tmp_path / sensor.FINAL).exists()
    (tmp_path / sensor.HIDDEN).write_text("time,x\n" + "1,2\n" * 3000 + "77,")
    storage.append_to(tmp_path, sensor.HIDDEN, sensor.FINAL, "time,x\n").close()
    assert (tmp_path / sensor.HIDDEN).read_text() == "time,x\n" + "1,2\n" * 3000
