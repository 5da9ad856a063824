"""The device id: made once, private, the same ever after, one even when two processes start at once."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from opentap.identity import device_id


def test_made_once_and_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"  # not there yet: made with the id
    first = device_id(data)
    assert len(first) == 16 and device_id(data) == first
    path = data / "device-id"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == first.hex() + "\n"
    assert sorted(p.name for p in data.iterdir()) == ["device-id"]  # no temporary file left behind
    assert device_id(tmp_path / "other") != first


def test_concurrent_first_starts_agree(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(8) as pool:
        ids = pool.map(device_id, [tmp_path] * 32)
    assert len(set(ids)) == 1 and device_id(tmp_path) == ids[0]


@pytest.mark.parametrize("text", ["", "zz" * 16, "ab" * 8])
def test_a_damaged_id_is_an_error(tmp_path: Path, text: str) -> None:
    """Not replaced by a new one: the rules made under the old id would become another device's."""
    (tmp_path / "device-id").write_text(text)
    with pytest.raises(ValueError, match="device-id should hold 32 hex digits"):
        device_id(tmp_path)
    assert (tmp_path / "device-id").read_text() == text
