"""`ring_mb` on a network observation point: read as MiB, 0 or absent for none, anything else a start-up error
that names the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from opentap import config


def _load(tmp_path: Path, spec: str) -> config.Config:
    path = tmp_path / "opentap.conf"
    path.write_text(f'[observation_points]\nedge = {spec}\nplain = "lo"\n')
    return config.load(path)


def test_ring_mb_is_read(tmp_path: Path) -> None:
    cfg = _load(tmp_path, '{interface = "lo", ring_mb = 4096, projects = ["lab"]}')
    assert cfg.observation_points["edge"].ring_mb == 4096 and cfg.observation_points["edge"].projects == ("lab",)
    assert cfg.observation_points["plain"].ring_mb == 0
    assert _load(tmp_path, '{interface = "lo", ring_mb = 0}').observation_points["edge"].ring_mb == 0


@pytest.mark.parametrize("value", ["5", "-16", '"64"', "true", "1e12", "nan"])
def test_bad_ring_mb_names_the_key(tmp_path: Path, value: str) -> None:
    with pytest.raises(config.ConfigError) as e:
        _load(tmp_path, f'{{interface = "lo", ring_mb = {value}}}')
    assert "observation_points.edge.ring_mb" in str(e.value)
