"""The `sensor` capture type: the sensors of a sensor point sampled every `period` ms into a CSV, `time` (UNIX ms,
the sample's scheduled time) and a column per sensor, named by its kind (the original OpenTap's layout).

Like linkstats, rows are appended to a hidden file and flushed one by one (so a retrieve during the window sees
them), and the file is published when the capture ends. Unlike it, the schedule is absolute (sampling.Schedule):
the k-th row is stamped start + k * period, late samples are taken late and counted, samples the sampler could
not take at all are missed and make the capture truncated, and a sensor that gives no value leaves its field
empty and a gap in the reason. The sensors' channels are shared with other captures (sensors/hub.py)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opentap.capture import storage
from opentap.capture.errors import RequestError
from opentap.capture.sampling import Gaps, Lateness, Schedule, missed_reason, realtime
from opentap.capture.types import CSV_MEDIA, CaptureType, DriverContext, Format, Totals
from opentap.config import ObservationPoint
from opentap.configsensors import SensorPoint, SensorSpec, columns
from opentap.sensors import hub as sensor_hub

log = logging.getLogger("opentap.sensor")
HIDDEN, FINAL = ".sensor.csv", "sensor.csv"
DEFAULT_PERIOD_MS = 1000
SIMULATED_MSG = ("The sensor point '{}' is simulated: its data is a deterministic test signal, not a "
                 "measurement.")


def plan_options(point: ObservationPoint, options: dict[str, Any]) -> str:
    """A sensor request's extra checks and options (plan.check calls this); returns what its msg should add.
    The capture keeps its sensors in its options: a resumed capture reads what it started with, whatever the
    config says by then, so its CSV keeps one header."""
    if not isinstance(point, SensorPoint) or not point.sensors:
        raise RequestError(400, f"'{point.name}' is not a sensor point")
    for spec in point.sensors:
        why = sensor_hub.availability(spec)
        if why:
            raise RequestError(400, f"the sensor point '{point.name}' cannot capture now: {spec.label}: {why}")
    period = options.get("period", DEFAULT_PERIOD_MS)
    fastest = max(sensor_hub.min_period_ms(s) for s in point.sensors)
    if period < fastest:
        raise RequestError(400, f"'period' must be at least {fastest} ms for the sensor point '{point.name}'")
    options["sensors"] = [s.to_json() for s in point.sensors]
    return SIMULATED_MSG.format(point.name) if point.simulated else ""


def segment_stats(directory: Path) -> tuple[dict[str, int], Lateness]:
    total = {"samples": 0, "missed_samples": 0, "empty_values": 0}
    lateness = Lateness()
    for path in sorted(directory.glob("sampler-*.json")):
        doc = json.loads(path.read_text())
        for k in total:
            total[k] += int(doc.get(k, 0))
        lateness.merge(doc.get("lateness", {}))
    return total, lateness


def data_files(directory: Path) -> list[Path]:
    return storage.text_file(directory, HIDDEN, FINAL)


def whole_rows(directory: Path) -> Iterator[bytes]:
    """The CSV as it stands, up to its last whole row: the sampler may be appending one as it is read."""
    for path in data_files(directory):
        with open(path, "rb") as f:
            tail = b""
            while block := f.read(1 << 20):
                data = tail + block
                cut = data.rfind(b"\n") + 1
                if cut:
                    yield data[:cut]
                tail = data[cut:]


def finalize(directory: Path) -> None:
    storage.publish_text(directory, HIDDEN, FINAL)


class SensorDriver:
    pid = None

    def __init__(self, directory: Path, specs: list[SensorSpec], period_ms: int, start_ns: int, stop_ns: int,
                 segment: int = 1, hub: sensor_hub.Hub | None = None) -> None:
        self.directory, self.specs, self.period_ms, self.segment = directory, specs, period_ms, segment
        self.hub = hub or sensor_hub.HUB
        self.start_ms, self.stop_ms = round(start_ns / 1e6), round(stop_ns / 1e6)  # UNIX ms, as rows stamp them
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: str | None = None
        self.leases: list[sensor_hub.Lease] = []
        self.rows = self.missed = 0
        self.lateness = Lateness()
        self.gaps = Gaps([s.label for s in specs])

    def start(self) -> None:
        try:
            for spec in self.specs:
                self.leases.append(self.hub.acquire(spec, self.period_ms))
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = storage.append_to(self.directory, HIDDEN, FINAL,
                                           ",".join(["time", *columns(self.specs)]) + "\n")
        except BaseException:  # the capture fails to start: the channels it took go back
            self._release()
            raise
        self._thread = threading.Thread(target=self._run, name=f"sensor-{self.directory.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        realtime()
        try:
            schedule = Schedule(self.start_ms, self.period_ms, self.stop_ms)
            # samples due before the driver ran are the engine's to account for (a late start, a restart's gap)
            first = max(0, schedule.due(time.monotonic()))
            if not self._wait_ready():
                return
            k = max(first, schedule.due(time.monotonic()))
            self.missed += k - first  # waiting for a Phidget to attach
            self._loop(schedule, k)
        except Exception as e:  # the capture fails (or is truncated, with what it wrote) with the reason
            log.exception("sensor sampler %s", self.directory.name)
            what = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
            self._failure = f"the sensor sampler stopped: {what}"

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + max(lease.source.attach_timeout for lease in self.leases)
        while not self._stop.is_set():
            waiting = [lease for lease in self.leases if not lease.source.ready()]
            if not waiting:
                return True
            if time.monotonic() >= deadline:
                self._failure = waiting[0].source.not_ready()
                return False
            self._stop.wait(0.02)
        return False

    def _loop(self, schedule: Schedule, k: int) -> None:
        leases, gaps, stop, write = self.leases, self.gaps, self._stop, self._file.write
        while k < schedule.count:
            if stop.wait(max(0.0, schedule.mono(k) - time.monotonic())):
                return
            now = time.monotonic()
            due = schedule.due(now)
            if due > k:  # more than a period late (a busy machine): skip to the latest due, count the skipped
                self.missed += min(due, schedule.count) - k
                k = due
                if k >= schedule.count:
                    return
            self.lateness.add(now - schedule.mono(k))
            at_ms = schedule.at_ms(k)
            fields = [str(at_ms)]
            for i, lease in enumerate(leases):
                value = lease.read(at_ms / 1000)
                ok = value is not None and value == value and abs(value) != float("inf")
                gaps.note(i, at_ms, not ok, "" if ok else lease.source.why())
                fields.append(f"{value:.12g}" if ok else "")
            write(",".join(fields) + "\n")
            self._file.flush()
            self.rows += 1
            k += 1

    def alive(self) -> bool:
        # a sampler that took its last sample is done, not dead: the engine ends the capture at the window's end
        return self._failure is None

    def failure(self) -> str:
        return self._failure or "the sensor sampler stopped unexpectedly"

    def tick(self) -> None:
        pass

    def _release(self) -> None:
        for lease in self.leases:
            lease.release()

    def stop(self) -> list[str]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        warnings = [w for lease in self.leases for w in lease.source.warnings(self.period_ms)]
        self._release()
        self._file.close()
        if not self.directory.is_dir():
            return [storage.DIR_REMOVED]
        stats = {"samples": self.rows, "missed_samples": self.missed, "empty_values": self.gaps.empty,
                 "lateness": self.lateness.to_json()}
        (self.directory / f"sampler-{self.segment:03d}.json").write_text(json.dumps(stats))
        finalize(self.directory)
        problems = self.gaps.reasons() + warnings
        if self.missed:
            problems.insert(0, missed_reason(self.missed, self.rows, self.period_ms))
        return problems


def _totals(directory: Path) -> Totals:
    files = data_files(directory)
    if not files:
        return Totals()
    rows = storage.data_rows(files)
    counts, lateness = segment_stats(directory)
    counts["samples"] = rows  # the file's count: a segment ended by a crash wrote no sampler JSON
    stats = {**counts, "lateness_p50_us": lateness.percentile(50), "lateness_p99_us": lateness.percentile(99),
             "lateness_max_us": lateness.max_us}
    return Totals(packets=rows, stats=stats)  # rows sampled, not packets


def _driver(c: DriverContext) -> SensorDriver:
    specs = [SensorSpec.from_json(s) for s in c.options.get("sensors", [])]
    return SensorDriver(c.directory, specs, c.options.get("period", DEFAULT_PERIOD_MS), c.start_ns, c.stop_ns,
                        c.segment)


SENSOR = CaptureType(
    name="sensor", point_kind="sensor",
    description="the sensor point's sensors sampled every `period` ms: time (UNIX ms) and a column per sensor (CSV)",
    options=frozenset({"period"}), make_driver=_driver,
    formats={"csv": Format(CSV_MEDIA, "csv", whole_rows)},
    default_format="csv", totals=_totals, finalize=finalize,
)
