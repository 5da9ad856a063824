"""Sensor points: `[sensors.NAME]` tables in opentap.conf, and the original OpenTap's `opentapSensorConf.csv`.

A sensor is one value read from one source (a Phidget channel, a file the kernel exposes, a simulated signal). A
sensor point is what a capture names: one sensor, or several that give the same `point = "..."` and become one
CSV with a column each, in the config's order. Checked here like every other key, so a bad table stops the
daemon at start with the key and the problem.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from opentap.config import NAME_RE, ConfigError, ObservationPoint

DRIVERS = ("phidget22", "sysfs", "simulated")
# Phidgets part -> (kind, unit). The kind names the CSV column; the original wrote "IR reflective 5mm" and so on,
# made column-safe here. "temperature" is a TemperatureSensor channel (a thermocouple board, a VINT sensor).
PARTS: dict[str, tuple[str, str]] = {
    "1102": ("ir_reflective_5mm", ""), "1103": ("ir_reflective_10cm", ""), "1104": ("vibration", ""),
    "1111": ("motion", ""), "1124": ("temperature", "°C"), "temperature": ("temperature", "°C"),
}
KIND_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")  # a CSV column: no '.', which marks repeated kinds
LEGACY_CSV = "opentapSensorConf.csv"
LEGACY_COLUMNS = ("interface_serial_num", "sensor_port", "sensor_id", "sensor_type", "observation_pt_name")
KEYS = {
    "phidget22": {"serial", "port", "part"},
    "sysfs": {"path", "kind", "scale", "offset", "unit"},
    "simulated": {"kind", "unit"},
}
COMMON_KEYS = {"driver", "point", "projects"}


@dataclass(frozen=True)
class SensorSpec:
    """One sensor, as a capture keeps it (in its options: a resumed capture reads what it started with)."""

    name: str
    driver: str
    kind: str
    unit: str = ""
    serial: int | None = None  # phidget22
    port: int | None = None
    part: str | None = None
    path: str | None = None  # sysfs: value = raw * scale + offset
    scale: float = 1.0
    offset: float = 0.0

    @property
    def simulated(self) -> bool:
        return self.driver == "simulated"

    @property
    def label(self) -> str:
        """How messages name it, to anyone who may capture it."""
        if self.driver == "phidget22":
            return f"Phidget {self.part} on serial {self.serial} port {self.port}"
        return f"sensor '{self.name}'"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SensorSpec:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class SensorPoint(ObservationPoint):
    """An observation point of sensors. `interface` says which drivers it reads (shown to admins, as a network
    point's interface is)."""

    sensors: tuple[SensorSpec, ...] = field(default=())

    @property
    def columns(self) -> list[str]:
        return columns(self.sensors)

    @property
    def simulated(self) -> bool:
        return any(s.simulated for s in self.sensors)


def columns(sensors: tuple[SensorSpec, ...] | list[SensorSpec]) -> list[str]:
    """A column per sensor, named by its kind; a kind that repeats is `kind.1`, `kind.2`, ... after the first, the
    names pandas gave the original's repeated headers (so its clients find the same columns)."""
    seen: dict[str, int] = {}
    out = []
    for s in sensors:
        n = seen.get(s.kind, 0)
        seen[s.kind] = n + 1
        out.append(s.kind if n == 0 else f"{s.kind}.{n}")
    return out


def _int(path: Path, key: str, value: object, low: int, high: int) -> int:
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,12}", value):  # the original's CSV is text
        value = int(value)
    if type(value) is not int or not low <= value <= high:
        raise ConfigError(path, key, f"must be a whole number from {low} to {high} (got {value!r})")
    return value


def _float(path: Path, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(path, key, f"must be a finite number (got {value!r})")
    return float(value)


def _text(path: Path, key: str, value: object, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or "\x00" in value or (pattern is not None and not pattern.match(value)):
        raise ConfigError(path, key, f"must be {'a name like ' + pattern.pattern if pattern else 'text'} "
                                     f"(got {value!r})")
    return value


def _spec(path: Path, name: str, table: dict[str, Any]) -> SensorSpec:
    key = f"sensors.{name}"
    driver = table.get("driver")
    if driver not in DRIVERS:
        raise ConfigError(path, key + ".driver", f"must be one of {', '.join(DRIVERS)} (got {driver!r})")
    unknown = sorted(set(table) - COMMON_KEYS - KEYS[driver])
    if unknown:
        raise ConfigError(path, f"{key}.{unknown[0]}", f"unknown key for a {driver} sensor (known: "
                                                       f"{', '.join(sorted(COMMON_KEYS | KEYS[driver]))})")
    unit = _text(path, key + ".unit", table.get("unit", ""))
    if driver == "phidget22":
        for required in ("serial", "port", "part"):
            if required not in table:
                raise ConfigError(path, f"{key}.{required}", "is required for a phidget22 sensor")
        part = str(table["part"]) if type(table["part"]) is int else table["part"]
        if part not in PARTS:
            raise ConfigError(path, key + ".part", f"must be one of {', '.join(PARTS)} (got {table['part']!r})")
        kind, unit = PARTS[part]
        return SensorSpec(name, driver, kind, unit, serial=_int(path, key + ".serial", table["serial"], 1, 2**31 - 1),
                          port=_int(path, key + ".port", table["port"], 0, 63), part=part)
    if "kind" not in table:
        raise ConfigError(path, key + ".kind", f"is required for a {driver} sensor (temperature, motion, ...)")
    kind = _text(path, key + ".kind", table["kind"], KIND_RE)
    if kind == "time":
        raise ConfigError(path, key + ".kind", "'time' is the CSV's time column; name the kind otherwise")
    if driver == "simulated":
        return SensorSpec(name, driver, kind, unit)
    file = _text(path, key + ".path", table.get("path"))
    if not os.path.isabs(file):  # the daemon's working directory is no place to look for a sensor
        raise ConfigError(path, key + ".path", f"must be an absolute path (got {file!r})")
    return SensorSpec(name, driver, kind, unit, path=file,
                      scale=_float(path, key + ".scale", table.get("scale", 1.0)),
                      offset=_float(path, key + ".offset", table.get("offset", 0.0)))


def points(path: Path, raw: object, network: dict[str, ObservationPoint]) -> dict[str, SensorPoint]:
    """[sensors.NAME] tables as sensor points, by point name, in the config's order."""
    if not isinstance(raw, dict):
        raise ConfigError(path, "sensors", "must be a table of [sensors.NAME] tables")
    groups: dict[str, list[SensorSpec]] = {}
    projects: dict[str, tuple[str, ...] | None] = {}
    for name, table in raw.items():
        key = f"sensors.{name}"
        if not NAME_RE.match(name) or not isinstance(table, dict):
            raise ConfigError(path, key, "must be a [sensors.NAME] table; names use letters, digits, '_', '.', '-'")
        point = _text(path, key + ".point", table.get("point", name), NAME_RE)
        if point in network:  # a capture's type picks the kind of point, but one name for two things misleads
            raise ConfigError(path, key + (".point" if "point" in table else ""),
                              f"'{point}' is already a network observation point; name the sensor point otherwise")
        own = table.get("projects")
        if own is not None:
            if not isinstance(own, list) or not all(isinstance(p, str) and NAME_RE.match(p) for p in own):
                raise ConfigError(path, key + ".projects", "must be a list of project ids")
            if projects.get(point) not in (None, tuple(own)):
                raise ConfigError(path, key + ".projects", f"differs from another sensor's of point '{point}': "
                                                          "the sensors of one point share its projects")
            projects[point] = tuple(own)
        groups.setdefault(point, []).append(_spec(path, name, table))
    out = {}
    for point, specs in groups.items():
        drivers = "+".join(dict.fromkeys(s.driver for s in specs))
        out[point] = SensorPoint(point, drivers, projects.get(point) or (), False, tuple(specs))
    return out


def legacy_raw(config_path: Path) -> dict[str, dict[str, Any]]:
    """The original's opentapSensorConf.csv beside its config, as [sensors.NAME] tables (none if it is absent).
    Each row is a Phidget port; rows naming the same point become one multi-column point, as there."""
    csv_path = config_path.parent / LEGACY_CSV
    try:
        text = csv_path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ConfigError(csv_path, "(file)", f"cannot read it: {e.strerror}") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows or tuple(c.strip() for c in rows[0]) != LEGACY_COLUMNS:
        raise ConfigError(csv_path, "(header)", f"must be {','.join(LEGACY_COLUMNS)}")
    tables: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(LEGACY_COLUMNS):
            raise ConfigError(csv_path, f"line {number}", f"must have {len(LEGACY_COLUMNS)} columns (got {row!r})")
        serial, port, part, _label, point = (c.strip() for c in row)
        tables[f"{point}.{serial}.{port}"] = {"driver": "phidget22", "serial": serial, "port": port,
                                              "part": part, "point": point}
    return tables


def toml_table(name: str, values: dict[str, Any]) -> str:
    """A [sensors.NAME] table as TOML (what `opentap sensors detect --write` appends)."""
    import json

    def value(v: Any) -> str:
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    return "\n".join([f"[sensors.{name}]", *(f"{k} = {value(v)}" for k, v in values.items())]) + "\n"
