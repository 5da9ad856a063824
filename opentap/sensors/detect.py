"""What sensors this host has: attached Phidgets (the library's Manager) and the numbers the kernel exposes as
files, hwmon (`/sys/class/hwmon`), thermal zones (`/sys/class/thermal`) and IIO (`/sys/bus/iio/devices`), each
with its current value and the config a sysfs sensor would need. `opentap sensors detect` prints them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from . import sysfs

# hwmon attribute prefix -> (kind, unit, scale to that unit): Documentation/hwmon/sysfs-interface.rst
HWMON = {"temp": ("temperature", "°C", 0.001), "fan": ("fan", "RPM", 1.0), "in": ("voltage", "V", 0.001),
         "curr": ("current", "A", 0.001), "power": ("power", "W", 1e-6), "humidity": ("humidity", "%", 0.001)}
# IIO channel type -> (kind, unit, scale from IIO's unit to that unit): Documentation/ABI/testing/sysfs-bus-iio
IIO = {"temp": ("temperature", "°C", 0.001), "humidityrelative": ("humidity", "%", 0.001),
       "pressure": ("pressure", "kPa", 1.0), "illuminance": ("illuminance", "lx", 1.0),
       "voltage": ("voltage", "V", 0.001), "current": ("current", "A", 0.001), "accel": ("acceleration", "m/s²", 1.0),
       "anglvel": ("angular_velocity", "rad/s", 1.0), "magn": ("magnetic_field", "G", 1.0),
       "proximity": ("proximity", "", 1.0), "intensity": ("intensity", "", 1.0), "concentration": ("concentration",
                                                                                                 "%", 1.0)}
HWMON_RE = re.compile(r"^(temp|fan|in|curr|power|humidity)(\d+)_input$")
IIO_RE = re.compile(r"^in_([a-z]+?)(\d*)(_[a-z0-9_]+?)?_(input|raw)$")


@dataclass(frozen=True)
class HostSensor:
    """A number the kernel exposes, as a [sensors.NAME] table would read it."""

    source: str  # hwmon, thermal, iio
    device: str  # the chip's or zone's own name
    what: str  # its label, or the attribute
    path: str
    kind: str
    unit: str
    scale: float
    offset: float
    value: float | None  # now, scaled; None when it gave no number

    @property
    def suggested_name(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.device}_{self.what}").strip("_")[:64] or self.source

    def table(self) -> dict[str, object]:
        out: dict[str, object] = {"driver": "sysfs", "path": self.path, "kind": self.kind}
        if self.scale != 1.0:
            out["scale"] = self.scale
        if self.offset:
            out["offset"] = self.offset
        if self.unit:
            out["unit"] = self.unit
        return out


def _text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _number(path: Path) -> float | None:
    try:
        return sysfs.parse(path.read_bytes()[: sysfs.MAX_BYTES])
    except OSError:
        return None


def _make(source: str, device: str, what: str, path: Path, kind: str, unit: str, scale: float,
          offset: float = 0.0) -> HostSensor:
    raw = _number(path)
    value = None if raw is None else round(raw * scale + offset, 6)
    return HostSensor(source, device, what, str(path), kind, unit, scale, offset, value)


def hwmon(root: Path = Path("/sys")) -> list[HostSensor]:
    out = []
    for chip in sorted((root / "class/hwmon").glob("hwmon*")):
        device = _text(chip / "name") or chip.name
        for attr in sorted(chip.iterdir(), key=lambda p: p.name):
            m = HWMON_RE.match(attr.name)
            if m:
                kind, unit, scale = HWMON[m.group(1)]
                what = _text(chip / f"{m.group(1)}{m.group(2)}_label") or f"{m.group(1)}{m.group(2)}"
                out.append(_make("hwmon", device, what, attr, kind, unit, scale))
    return out


def thermal(root: Path = Path("/sys")) -> list[HostSensor]:
    out = []
    for zone in sorted((root / "class/thermal").glob("thermal_zone*")):
        if (zone / "temp").exists():
            out.append(_make("thermal", _text(zone / "type") or zone.name, zone.name, zone / "temp", "temperature",
                             "°C", 0.001))
    return out


def iio(root: Path = Path("/sys")) -> list[HostSensor]:
    """Processed values (`_input`) where the driver gives them, else `_raw` with its `_scale` and `_offset`
    (IIO's value = (raw + offset) * scale, in IIO's units; ours is raw * scale + offset, in the unit named)."""
    out = []
    for dev in sorted((root / "bus/iio/devices").glob("iio:device*")):
        device = _text(dev / "name") or dev.name
        names = {p.name for p in dev.iterdir()}
        for name in sorted(names):
            m = IIO_RE.match(name)
            if not m or (m.group(4) == "raw" and name[: -len("raw")] + "input" in names):
                continue
            ctype, stem = m.group(1), name[: -len(m.group(4)) - 1]
            kind, unit, to_unit = IIO.get(ctype, (ctype, "", 1.0))
            scale, offset = to_unit, 0.0
            if m.group(4) == "raw":  # the channel's own scale and offset, else the type's shared ones
                shared = f"in_{ctype}"
                iio_scale = _number(dev / f"{stem}_scale") or _number(dev / f"{shared}_scale") or 1.0
                iio_offset = _number(dev / f"{stem}_offset") or _number(dev / f"{shared}_offset") or 0.0
                scale, offset = iio_scale * to_unit, iio_offset * iio_scale * to_unit
            out.append(_make("iio", device, stem[len("in_"):], dev / name, kind, unit, scale, offset))
    return out


def host_sensors(root: Path = Path("/sys")) -> list[HostSensor]:
    return hwmon(root) + thermal(root) + iio(root)
