"""Our flow meter's records summed per one-way 5-tuple, the way the oracles (oracles.py) count packets and bytes,
so the two can be compared key by key."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from opentap.flows.meter import FlowMeter, Flows
from opentap.flows.nfcsv import csv_text, proto_name
from opentap.flows.pipeline import meter_files


def meter_per_key(pcap: Path, **timeouts: float) -> dict[tuple, tuple[int, int]]:
    """Our CSV records summed per one-way 5-tuple (over VLANs and over flows split by timeouts)."""
    flows = Flows.concat(list(meter_files([pcap], FlowMeter(**timeouts))))
    out: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for line, proto in zip(csv_text(flows).splitlines(), flows.array()["proto"].tolist(), strict=True):
        c = line.split(",")
        assert c[7] == proto_name(proto)  # the name is all the CSV has; the number comes from the record
        key = (c[3], c[4], int(c[5]), int(c[6]), proto)
        out[key][0] += int(c[11])
        out[key][1] += int(c[12])
    return {k: (p, b) for k, (p, b) in out.items()}
