"""Our meter on a generated pcap of every kind of traffic (tests/support/pcapgen.py): per one-way 5-tuple, its
packets and IP bytes equal the pure-Python reader's, whatever the timeouts split. (The same against tshark and
softflowd: tests/system/test_meter_oracles.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from ..support import oracles
from ..support.metersums import meter_per_key
from ..support.pcapgen import generate


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "mixed.pcap"
    generate(path, 20_000, seed=7)
    return path


def test_packets_and_bytes_equal_the_independent_reader(mixed: Path) -> None:
    truth = oracles.own_truth(mixed, icmp_type_in_dp=True)
    mine = meter_per_key(mixed, idle_timeout=5, active_timeout=20)  # timeouts split flows, never change the sums
    assert mine == truth
