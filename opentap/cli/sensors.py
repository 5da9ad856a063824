"""`opentap sensors detect [--write]`: the sensors this host has, with their current values; with --write it asks
a name for each (as the original's opentapSensorDetect.py did) and adds them to the config. The installer runs
it. Runs on the device itself: it reads the hardware, not the API."""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from opentap import config
from opentap.cli.output import render
from opentap.configsensors import LEGACY_COLUMNS, LEGACY_CSV, PARTS, toml_table
from opentap.sensors import detect, phidget

Ask = Callable[[str], str]
PHIDGET_PARTS = [p for p in PARTS if p != "temperature"]
PHIDGET_REQUIREMENT = "Phidget22>=1.26"  # the `phidgets` extra of pyproject.toml


def _phidget_rows(found: list[phidget.Found]) -> list[dict[str, object]]:
    return [{"serial": f.serial, "device": f.device, "channel": f.channel_class.removeprefix("Phidget"),
             "port": f.port, "on": "VINT hub port" if f.hub_port >= 0 else "channel"} for f in found]


def _host_rows(host: list[detect.HostSensor]) -> list[dict[str, object]]:
    return [{"source": h.source, "device": h.device, "sensor": h.what, "kind": h.kind,
             "value": "" if h.value is None else f"{h.value:g} {h.unit}".strip(), "path": h.path} for h in host]


def _name(ask: Ask, what: str, taken: set[str], suggested: str = "") -> str | None:
    """A new sensor's name from the admin; None to skip it. Asked again until it is a usable one."""
    while True:
        hint = f" [{suggested}]" if suggested else ""
        answer = ask(f"Name for {what}{hint} ('-' skips{'' if suggested else ', as does an empty answer'}): ").strip()
        if answer == "-" or (not answer and not suggested):
            return None
        name = answer or suggested
        if not config.NAME_RE.match(name):
            print("  a name uses only letters, digits, '_', '.', '-' (1-64)")
        elif name in taken:
            print(f"  '{name}' is already a sensor or observation point")
        else:
            taken.add(name)
            return name


def _part(ask: Ask, f: phidget.Found) -> str | None:
    if f.channel_class == "PhidgetTemperatureSensor":
        return "temperature"
    while True:
        answer = ask(f"Part number written on the sensor at serial {f.serial} port {f.port} "
                     f"({', '.join(PHIDGET_PARTS)}; empty: no sensor there): ").strip()
        if not answer or answer in PHIDGET_PARTS:
            return answer or None
        print(f"  one of {', '.join(PHIDGET_PARTS)}")


def _ask_all(ask: Ask, cfg: config.Config, found: list[phidget.Found],
             host: list[detect.HostSensor]) -> list[tuple[str, dict[str, object]]]:
    taken = set(cfg.observation_points) | set(cfg.sensor_points)
    taken |= {s.name for p in cfg.sensor_points.values() for s in p.sensors}
    tables: list[tuple[str, dict[str, object]]] = []
    try:
        for f in found:
            part = _part(ask, f)
            if part is None:
                continue
            name = _name(ask, f"the {PARTS[part][0]} sensor at serial {f.serial} port {f.port}", taken)
            if name:
                tables.append((name, {"driver": "phidget22", "serial": f.serial, "port": f.port,
                                      "part": part if part == "temperature" else int(part)}))
        for h in host:
            now = "" if h.value is None else f", now {h.value:g} {h.unit}".rstrip()
            name = _name(ask, f"{h.source} {h.device} {h.what} ({h.kind}{now})", taken, h.suggested_name)
            if name:
                tables.append((name, h.table()))
    except EOFError:  # no more answers (the installer without a terminal): keep those given
        print()
    return tables


def _replace(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o644)
    os.replace(tmp, path)


def write(cfg: config.Config, tables: list[tuple[str, dict[str, object]]]) -> str:
    """Add the named sensors to the config (the original's format: to its opentapSensorConf.csv, Phidgets only);
    what was written is loaded before this returns, and put back as it was if it does not load."""
    if cfg.legacy_format:
        csv_path = cfg.path.parent / LEGACY_CSV
        rows = [(t["serial"], t["port"], t["part"], PARTS[str(t["part"])][0], name)
                for name, t in tables if t["driver"] == "phidget22"]
        skipped = len(tables) - len(rows)
        old = csv_path.read_text() if csv_path.exists() else ",".join(LEGACY_COLUMNS) + "\n"
        new = old + "".join(",".join(str(c) for c in r) + "\n" for r in rows)
        target = csv_path
        note = f" ({skipped} host sensors skipped: the original format has Phidgets only)" if skipped else ""
    else:
        old = cfg.path.read_text()
        new = old.rstrip("\n") + "\n" + "".join("\n" + toml_table(name, t) for name, t in tables)
        target, note = cfg.path, ""
    _replace(target, new)
    try:
        config.load(cfg.path)
    except config.ConfigError:
        _replace(target, old)
        raise
    added = len(new.splitlines()) - len(old.splitlines()) if cfg.legacy_format else len(tables)
    return f"added {added} sensor{'s' * (added != 1)} to {target}{note}"


def show(root: Path, seconds: float, offer_install: Ask | None = None) -> tuple[list[phidget.Found],
                                                                               list[detect.HostSensor]]:
    """Print the attached Phidgets and the host's sensors, and return them. With offer_install, a missing
    Phidget22 library is offered to be installed (the optional extra) first: the installer's path."""
    found, why = phidget.attached(seconds)
    if why == phidget.MISSING and offer_install is not None and _install_library(offer_install):
        found, why = phidget.attached(seconds)
    print("Phidgets:" if found else f"Phidgets: {why or 'none attached'}")
    if found:
        print(render(_phidget_rows(found), "table", ["serial", "device", "channel", "port", "on"]))
    host = detect.host_sensors(root)
    print(f"\nHost sensors (hwmon, thermal, IIO under {root}):{'' if host else ' none'}")
    if host:
        print(render(_host_rows(host), "table", ["source", "device", "sensor", "kind", "value", "path"]))
    return found, host


def _install_library(ask: Ask) -> bool:
    answer = ask("The Phidget22 library is not installed. Install it now with pip (it needs Debian's "
                 "libusb-1.0-0) (yes/no) [yes]: ").strip().lower()
    if answer not in ("", "y", "yes"):
        return False
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", PHIDGET_REQUIREMENT], check=False)
    importlib.invalidate_caches()  # the new package is found by the imports that follow
    phidget.forget()
    return done.returncode == 0


def add(path: Path, found: list[phidget.Found], host: list[detect.HostSensor], ask: Ask) -> int:
    """Ask a name for each sensor found and add the named ones to the config at path."""
    cfg = config.load(path)
    if not found and not host:
        print("\nnothing to add")
        return 0
    print()
    tables = _ask_all(ask, cfg, found, host)
    if not tables:
        print("no sensors named: the config is unchanged")
        return 0
    print(write(cfg, tables))
    return 0


def _detect(args: argparse.Namespace) -> int:
    found, host = show(Path(args.sysfs_root), args.seconds)
    return add(config.config_path(args.config), found, host, input) if args.write else 0


def add_command(sub: argparse._SubParsersAction) -> None:
    sensors = sub.add_parser("sensors", help="this host's sensors").add_subparsers(dest="action", required=True)
    detect_cmd = sensors.add_parser(
        "detect", help="list attached Phidgets and the host's hwmon, thermal and IIO sensors with their values",
        description="List attached Phidgets (the Phidget22 library's Manager) and the numbers the kernel exposes "
                    "(hwmon, thermal zones, IIO) with their current values. --write asks a name for each and adds "
                    "the named ones to the config as [sensors.NAME] tables.")
    detect_cmd.add_argument("--config", help="config file (default: $OPENTAP_CONF or /etc/opentap/opentap.conf)")
    detect_cmd.add_argument("--write", action="store_true", help="ask a name for each sensor, add them to the config")
    detect_cmd.add_argument("--seconds", type=float, default=1.0, help="how long to let Phidgets enumerate (1)")
    detect_cmd.add_argument("--sysfs-root", default="/sys", help=argparse.SUPPRESS)  # tests: a fake /sys
    detect_cmd.set_defaults(fn=_detect)
