"""The limits a config sets per project and for Tap-as-a-Service: `[projects.NAME]` (a project's own capture
limits), `tap_id_range` and `[taas_quota]`. Apart from config.py only to keep that file readable; config.py calls
it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentap.config import NAME_RE, QUOTA_MAX, TAAS_QUOTA_DEFAULTS, ConfigError, number


def apply(path: Path, raw: dict, cfg: Any) -> None:
    cfg.projects = _projects(path, raw.get("projects", {}))
    if "tap_id_range" in raw:
        cfg.tap_id_range = _id_range(path, "tap_id_range", raw["tap_id_range"])
    if "taas_quota" in raw:
        cfg.taas_quota = _taas_quota(path, raw["taas_quota"])


def _projects(path: Path, raw: object) -> dict[str, dict[str, float]]:
    """[projects.NAME]: a project's own limits, overriding project_max_concurrent_captures and
    project_disk_quota_mb."""
    if not isinstance(raw, dict):
        raise ConfigError(path, "projects", "must be a table of [projects.NAME] tables")
    out: dict[str, dict[str, float]] = {}
    for name, table in raw.items():
        key = f"projects.{name}"
        if not NAME_RE.match(name) or not isinstance(table, dict):
            raise ConfigError(path, key, "must be a [projects.NAME] table with a project id as NAME")
        unknown = set(table) - {"max_concurrent_captures", "disk_quota_mb"}
        if unknown:
            raise ConfigError(path, f"{key}.{sorted(unknown)[0]}", "unknown key (known: max_concurrent_captures, "
                                                                   "disk_quota_mb)")
        out[name] = {k: number(path, f"{key}.{k}", v, integer=k == "max_concurrent_captures")
                     for k, v in table.items()}
    return out


def _id_range(path: Path, key: str, value: object) -> tuple[int, int]:
    ok = (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)
          and 1 <= value[0] <= value[1] <= 4094)
    if not ok:
        raise ConfigError(path, key, f"must be [FIRST, LAST] with 1 <= FIRST <= LAST <= 4094 (got {value!r})")
    return value[0], value[1]


def _taas_quota(path: Path, raw: object) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise ConfigError(path, "taas_quota", "must be a table: [taas_quota] with tap_service = N, tap_flow = N")
    quota = dict(TAAS_QUOTA_DEFAULTS)
    for name, value in raw.items():
        if name not in quota:
            raise ConfigError(path, f"taas_quota.{name}", f"unknown key (known: {', '.join(TAAS_QUOTA_DEFAULTS)})")
        if type(value) is not int or not -1 <= value <= QUOTA_MAX:
            raise ConfigError(path, f"taas_quota.{name}", f"must be a whole number from -1 (unlimited) to {QUOTA_MAX} "
                                                          f"(got {value!r})")
        quota[name] = value
    return quota
