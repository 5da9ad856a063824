"""The original OpenTap's config format (`key: value` lines), read so that an existing device's file keeps
working: `retention: 60`, `websrv-addr: IP:PORT`, `alias: IFACE NAME`, `default-network-observationpt: IFACE`,
and its sensor points from `opentapSensorConf.csv` beside it. It becomes the same raw table a TOML file gives,
and config.py checks it the same way."""

from __future__ import annotations

import re
from pathlib import Path

from opentap.config import ConfigError
from opentap.configsensors import legacy_raw


def looks_legacy(text: str) -> bool:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    return bool(lines) and all(re.match(r"^[A-Za-z][\w-]*:(\s|$)", ln) for ln in lines)


def to_raw(path: Path, text: str) -> dict:
    """The original's file: `retention: 60`, `websrv-addr: IP:PORT`, `alias: IFACE NAME`,
    `default-network-observationpt: IFACE`. The original had no authentication, so neither does this mode."""
    # the original's clients read every retrieve as CSV: its ethernet captures come back as per-packet CSV
    raw: dict = {"observation_points": {}, "auth": "none", "ethernet_default_format": "csv"}
    default_iface = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, rest = line.partition(":")
        words = rest.split()
        if key == "retention" and words:
            raw["retention_minutes"] = words[0]  # text: checked as a number with the other keys
        elif key == "websrv-addr" and words:
            raw["listen"] = words[0]
        elif key == "alias":
            if len(words) != 2:
                raise ConfigError(path, "alias", f"must be 'alias: INTERFACE NAME' (got {line!r})")
            raw["observation_points"][words[1]] = words[0]
        elif key == "default-network-observationpt" and words:
            default_iface = words[0]
    if default_iface:  # the original names the interface here, not the alias
        names = [n for n, i in raw["observation_points"].items() if i == default_iface]
        if not names:
            raw["observation_points"][default_iface] = default_iface
            names = [default_iface]
        raw["default_observation_point"] = names[0]
    sensors = legacy_raw(path)  # the original kept its Phidgets in opentapSensorConf.csv beside this file
    if sensors:
        raw["sensors"] = sensors
    return raw
