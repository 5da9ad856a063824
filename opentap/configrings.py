"""Packet rings in opentap.conf: `ring_mb` on a network observation point turns its ring on at start.

    [observation_points.web]
    interface = "enp1s0"
    ring_mb = 4096          # the ring's disk budget in MiB, apart from the captures' quota; 0 or absent: no ring

An admin may turn a ring on, resize it or turn it off while the device runs (PUT /rings/{point}); that choice is
kept in the data directory and outlives a restart (capture/rings.py). Checked here like every other key.
"""

from __future__ import annotations

from pathlib import Path

from opentap.config import ConfigError

MIN_RING_MB = 16  # a ring keeps room for three blocks of 1/16 of its budget, at least 1 MB each
MAX_RING_MB = 16 * 1024 * 1024  # 16 TiB: anything larger is a typo


def ring_mb(path: Path, key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ConfigError(path, key, f"must be a number of MiB (got {value!r})")
    if value != 0 and not MIN_RING_MB <= value <= MAX_RING_MB:
        raise ConfigError(path, key, f"must be 0 (no ring) or between {MIN_RING_MB} and {MAX_RING_MB} MiB "
                                     f"(got {value!r})")
    return float(value)
