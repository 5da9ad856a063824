"""Our meter against independent oracles on the same generated pcap: packets and IP bytes per one-way
5-tuple equal a pure-Python reader's, which equals tshark's (test_oracles.py shows how softflowd -> nfcapd ->
nfdump relates to the same reader: equal packets on plain traffic, bytes plus Ethernet padding, no QinQ)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from opentap.flows.meter import FlowMeter, Flows
from opentap.flows.nfcsv import csv_text, proto_name
from opentap.flows.pipeline import meter_files

from . import oracles
from .pcapgen import generate


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "mixed.pcap"
    generate(path, 20_000, seed=7)
    return path


def ours(pcap: Path, **timeouts: float) -> dict[tuple, tuple[int, int]]:
    """Our CSV records summed per one-way 5-tuple (over VLANs and over flows split by timeouts)."""
    flows = Flows.concat(list(meter_files([pcap], FlowMeter(**timeouts))))
    out: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for line, proto in zip(csv_text(flows).splitlines(), flows["proto"].tolist(), strict=True):
        c = line.split(",")
        assert c[7] == proto_name(proto)  # the name is all the CSV has; the number comes from the record
        key = (c[3], c[4], int(c[5]), int(c[6]), proto)
        out[key][0] += int(c[11])
        out[key][1] += int(c[12])
    return {k: (p, b) for k, (p, b) in out.items()}


def test_packets_and_bytes_equal_the_independent_reader(mixed: Path) -> None:
    truth = oracles.own_truth(mixed, icmp_type_in_dp=True)
    mine = ours(mixed, idle_timeout=5, active_timeout=20)  # timeouts split flows, never change the sums
    assert mine == truth


@pytest.mark.skipif(bool(oracles.have("tshark")), reason=str(oracles.have("tshark")))
def test_independent_reader_agrees_with_tshark(mixed: Path) -> None:
    """Closes the loop: tshark's dissection gives the same truth (test_oracles ties softflowd to it too)."""
    assert oracles.own_truth(mixed, icmp_type_in_dp=True) == oracles.tshark_truth(mixed, icmp_type_in_dp=True)
