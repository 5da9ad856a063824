"""Open sensors, shared: captures of one sensor at the same time read one open channel (a Phidget can be opened
once per process and reports at the fastest period any of them asks for; a file is opened once). A capture
takes a Lease when it starts and gives it back when it stops; the last one out closes the channel."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from opentap.configsensors import SensorSpec

from . import phidget, sysfs
from .base import SensorError, Source
from .simulated import SimulatedSource


def make_source(spec: SensorSpec) -> Source:
    if spec.driver == "phidget22":
        assert spec.serial is not None and spec.port is not None and spec.part is not None
        return phidget.PhidgetSource(spec.serial, spec.port, spec.part)
    if spec.driver == "sysfs":
        assert spec.path is not None
        return sysfs.SysfsSource(spec.path)
    if spec.driver == "simulated":
        return SimulatedSource(spec.kind)
    raise SensorError(f"unknown sensor driver {spec.driver!r}")


def key(spec: SensorSpec) -> tuple:
    """What makes two sensors one channel: the hardware (or file) and, for a Phidget, its sensor type. Scale and
    offset are the lease's, so two configs of one file share it."""
    if spec.driver == "phidget22":
        return ("phidget22", spec.serial, spec.port, spec.part)
    if spec.driver == "sysfs":
        return ("sysfs", spec.path)
    return (spec.driver, spec.kind)


def availability(spec: SensorSpec) -> str | None:
    """Why this sensor cannot be captured now (None: it can, as far as can be known before opening it)."""
    if spec.driver == "phidget22":
        return phidget.library()[1]
    if spec.driver == "sysfs":
        return sysfs.check(spec.path or "")
    return None


def min_period_ms(spec: SensorSpec) -> int:
    cls = {"phidget22": phidget.PhidgetSource, "sysfs": sysfs.SysfsSource}.get(spec.driver, SimulatedSource)
    return cls.min_period_ms


@dataclass
class _Shared:
    source: Source
    periods: list[int] = field(default_factory=list)


class Lease:
    """One capture's use of a shared source; its values with the sensor's scale and offset."""

    def __init__(self, hub: Hub, spec: SensorSpec, shared: _Shared, period_ms: int) -> None:
        self.hub, self.spec, self.shared, self.period_ms = hub, spec, shared, period_ms
        self.source = shared.source
        self.label = spec.label
        self._scale, self._offset = spec.scale, spec.offset
        self.released = False

    def read(self, at: float) -> float | None:
        value = self.source.read(at)
        return None if value is None else value * self._scale + self._offset

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.hub.release(self)


class Hub:
    def __init__(self, factory: Callable[[SensorSpec], Source] = make_source) -> None:
        self.factory = factory
        self._lock = threading.Lock()
        self._open: dict[tuple, _Shared] = {}

    def acquire(self, spec: SensorSpec, period_ms: int) -> Lease:
        """A lease on the sensor's channel, opening it if nobody has; raises SensorError when it cannot be."""
        k = key(spec)
        with self._lock:
            shared = self._open.get(k)
            if shared is None:
                source = self.factory(spec)
                try:
                    source.open()
                except SensorError:
                    source.close()
                    raise
                except Exception as e:  # a driver's own error (the library's): the capture's reason says it
                    source.close()
                    raise SensorError(f"{spec.label}: {e}") from e
                shared = self._open[k] = _Shared(source)
            shared.periods.append(period_ms)
            shared.source.set_period(min(shared.periods))
            return Lease(self, spec, shared, period_ms)

    def release(self, lease: Lease) -> None:
        k = key(lease.spec)
        with self._lock:
            shared = self._open.get(k)
            if shared is None or shared is not lease.shared:
                return
            shared.periods.remove(lease.period_ms)
            if shared.periods:
                shared.source.set_period(min(shared.periods))
                return
            del self._open[k]
        shared.source.close()

    def open_count(self) -> int:
        with self._lock:
            return len(self._open)


HUB = Hub()  # the daemon's: every capture in the process shares it
