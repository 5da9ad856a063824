"""Phidgets through the Phidget22 library (the optional `phidgets` extra; its wheel bundles libphidget22, which
needs Debian's libusb-1.0-0). Without it the daemon runs, and a Phidget point says why it cannot capture.

An analog sensor (1102, 1103, 1104, 1111, 1124) is a VoltageRatioInput channel with the library's sensor type
set, so the library's own conversion gives the value (°C for a 1124); `part = "temperature"` is a
TemperatureSensor channel. `port` is an InterfaceKit's channel or a VINT hub's port: both channels are opened
and the one the hardware matches is used. Values are subscribed to (the library calls us at every data
interval); a read is the latest one, none while detached."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from .base import SensorError

ATTACH_TIMEOUT = 5.0  # seconds: a Phidget that has not attached by then fails the capture
# part -> the library's VoltageRatioSensorType member (tests check these against the library's enums)
SENSOR_TYPES = {"1102": "SENSOR_TYPE_1102", "1103": "SENSOR_TYPE_1103", "1104": "SENSOR_TYPE_1104",
                "1111": "SENSOR_TYPE_1111", "1124": "SENSOR_TYPE_1124"}
MISSING = ("the Phidget22 package is not installed: pip install 'opentap[phidgets]' (it needs Debian's "
           "libusb-1.0-0)")
_lock = threading.Lock()
_library: tuple[SimpleNamespace | None, str | None] | None = None


def library() -> tuple[SimpleNamespace | None, str | None]:
    """The library's classes, or None and why they cannot be had (looked up once)."""
    global _library
    with _lock:
        if _library is None:
            _library = _load()
        return _library


def forget() -> None:
    """Look the library up again at the next use (it has just been installed)."""
    global _library
    with _lock:
        _library = None


def _load() -> tuple[SimpleNamespace | None, str | None]:
    try:
        from Phidget22.Devices.Manager import Manager
        from Phidget22.Devices.TemperatureSensor import TemperatureSensor
        from Phidget22.Devices.VoltageRatioInput import VoltageRatioInput
        from Phidget22.Phidget import Phidget
        from Phidget22.PhidgetException import PhidgetException
        from Phidget22.VoltageRatioSensorType import VoltageRatioSensorType

        version = Phidget.getLibraryVersion()  # loads libphidget22 (and so libusb) now, not at the first capture
    except ImportError:
        return None, MISSING
    except OSError as e:
        return None, f"the Phidget22 library cannot be loaded: {e} (it needs Debian's libusb-1.0-0)"
    return SimpleNamespace(Manager=Manager, TemperatureSensor=TemperatureSensor, VoltageRatioInput=VoltageRatioInput,
                           PhidgetException=PhidgetException, VoltageRatioSensorType=VoltageRatioSensorType,
                           version=version), None


def label(part: str, serial: int, port: int) -> str:
    return f"Phidget {part} on serial {serial} port {port}"


class PhidgetSource:
    min_period_ms = 10
    attach_timeout = ATTACH_TIMEOUT

    def __init__(self, serial: int, port: int, part: str) -> None:
        self.serial, self.port, self.part = serial, port, part
        self.label = label(part, serial, port)
        self._lock = threading.Lock()
        self._candidates: list[Any] = []
        self._chosen: Any = None
        self._attached = False
        self._value: float | None = None
        self._why = "not attached yet"
        self._period_ms = 1000
        self._min_interval: int | None = None

    def open(self) -> None:
        lib, why = library()
        if lib is None:
            raise SensorError(f"{self.label}: {why}")
        cls = lib.TemperatureSensor if self.part == "temperature" else lib.VoltageRatioInput
        for on_hub in (False, True):
            ch = cls()
            ch.setDeviceSerialNumber(self.serial)
            if on_hub:  # a VINT hub: the sensor is on hub port `port` (a hub-port device for analog sensors)
                ch.setHubPort(self.port)
                if self.part == "temperature":
                    ch.setChannel(0)
                else:
                    ch.setIsHubPortDevice(True)
            else:  # an InterfaceKit's analog input `port`, or a USB temperature board's channel
                ch.setChannel(self.port)
                if self.part != "temperature":
                    ch.setIsHubPortDevice(False)
            ch.setOnAttachHandler(self._on_attach)
            ch.setOnDetachHandler(self._on_detach)
            if self.part == "temperature":
                ch.setOnTemperatureChangeHandler(lambda c, value: self._on_value(c, value))
            else:
                ch.setOnSensorChangeHandler(lambda c, value, _unit: self._on_value(c, value))
            ch.open()  # returns at once: the library attaches it in the background when it appears
            self._candidates.append(ch)

    # -- the library's threads call these ------------------------------------------------------------------
    def _on_attach(self, ch: Any) -> None:
        with self._lock:
            if self._chosen is not None and self._chosen is not ch:
                return
            self._chosen = ch
        lib, _ = library()
        try:
            if self.part == "temperature":
                ch.setTemperatureChangeTrigger(0)  # an event every data interval, changed or not
            else:
                ch.setSensorType(getattr(lib.VoltageRatioSensorType, SENSOR_TYPES[self.part]))
                ch.setSensorValueChangeTrigger(0)
            self._min_interval = ch.getMinDataInterval()
            self._apply_period(ch)
            with contextlib.suppress(lib.PhidgetException):  # no valid value yet (nothing plugged in): later
                self._value = ch.getTemperature() if self.part == "temperature" else ch.getSensorValue()
        except lib.PhidgetException as e:
            self._why = f"the Phidget refused its settings: {e.details}"
            return
        with self._lock:
            self._attached = True

    def _on_detach(self, ch: Any) -> None:
        if ch is self._chosen:
            with self._lock:
                self._attached, self._value = False, None
                self._why = f"detached at {time.strftime('%H:%M:%S', time.gmtime())} UTC"

    def _on_value(self, ch: Any, value: float) -> None:
        if ch is self._chosen:
            self._value = float(value)

    # -- the sampler's side ----------------------------------------------------------------------------------
    def ready(self) -> bool:
        return self._attached

    def not_ready(self) -> str:
        return f"{self.label} not attached within {ATTACH_TIMEOUT:g} s"

    def read(self, at: float) -> float | None:
        value = self._value if self._attached else None
        if value is None and self._attached:
            self._why = "no value from the sensor (is it plugged in?)"
        return value

    def why(self) -> str:
        return self._why

    def _apply_period(self, ch: Any) -> None:
        interval = max(self._min_interval or 1, min(self._period_ms, ch.getMaxDataInterval()))
        ch.setDataInterval(int(interval))

    def set_period(self, ms: int) -> None:
        self._period_ms = ms
        lib, _ = library()
        if self._attached and lib is not None:
            with contextlib.suppress(lib.PhidgetException):
                self._apply_period(self._chosen)

    def warnings(self, period_ms: int) -> list[str]:
        if self._min_interval and self._min_interval > period_ms:
            return [f"{self.label} reports at most every {self._min_interval} ms: at a {period_ms} ms period "
                    "consecutive rows repeat its values"]
        return []

    def close(self) -> None:
        lib, _ = library()
        for ch in self._candidates:
            with contextlib.suppress(Exception if lib is None else lib.PhidgetException):
                ch.close()
        self._candidates, self._chosen, self._attached = [], None, False


@dataclass(frozen=True)
class Found:
    """A Phidget channel the library's Manager saw: what `opentap sensors detect` lists."""

    serial: int
    device: str
    channel_class: str
    channel: int
    hub_port: int  # -1 when not on a VINT hub
    hub_port_device: bool

    @property
    def port(self) -> int:
        return self.hub_port if self.hub_port >= 0 else self.channel


def attached(seconds: float = 1.0) -> tuple[list[Found], str | None]:
    """The VoltageRatioInput and TemperatureSensor channels attached now (the Manager is given `seconds` to
    enumerate them), or why they cannot be listed."""
    lib, why = library()
    if lib is None:
        return [], why
    found: list[Found] = []

    def on_attach(_manager: Any, ch: Any) -> None:
        with contextlib.suppress(lib.PhidgetException):
            name = ch.getChannelClassName()
            if name in ("PhidgetVoltageRatioInput", "PhidgetTemperatureSensor"):
                hub_port = _hub_port(ch, lib)
                found.append(Found(ch.getDeviceSerialNumber(), ch.getDeviceName(), name, ch.getChannel(), hub_port,
                                   bool(ch.getIsHubPortDevice())))

    manager = lib.Manager()
    manager.setOnAttachHandler(on_attach)
    try:
        manager.open()
        time.sleep(seconds)
    except lib.PhidgetException as e:
        return [], f"the Phidget22 Manager could not run: {e.details}"
    finally:
        with contextlib.suppress(lib.PhidgetException):
            manager.close()
    return sorted(found, key=lambda f: (f.serial, f.hub_port, f.channel)), None


def _hub_port(ch: Any, lib: SimpleNamespace) -> int:
    """The VINT hub port it is on, -1 for a device that is not on a hub (the library may raise for those)."""
    try:
        return int(ch.getHubPort())
    except lib.PhidgetException:
        return -1
