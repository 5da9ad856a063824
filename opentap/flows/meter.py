"""The flow meter: pcap records -> unidirectional flow records.

The per-packet work (decoding, the open-flow table, the timeout rules) is C (csrc/: packet.c, table.c), because
Python and numpy could not keep up with the pipeline it replaces (bench/flows.py). A packet joins the open flow
of its key (addresses, ports, protocol, VLAN) unless the idle gap, the active timeout or a FIN/RST before it
ends that flow. Every rule looks only at packet times, so where batches begin or end changes nothing. This
module turns finished flows into numpy records and keeps the counters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from opentap import _native

NS = 1_000_000_000

# csrc/flow.h's fm_flow, field for field: the C meter's output is read without copying or converting.
RECORD = np.dtype([
    ("first", "=i8"), ("last", "=i8"), ("packets", "=i8"), ("bytes", "=i8"), ("smac", "=u8"), ("dmac", "=u8"),
    ("src", "u1", 16), ("dst", "u1", 16),  # network order; IPv4 in the last 4 bytes
    ("sport", "=u2"), ("dport", "=u2"), ("vlan", "=u2"), ("proto", "u1"), ("ip", "u1"),
    ("flags", "u1"), ("tos", "u1"), ("ended", "u1"), ("used", "u1"), ("reserved", "=u4"),
])
assert RECORD.itemsize == _native.FLOW_SIZE, "RECORD is out of step with csrc/flow.h"


class Flows:
    """Finished flows, oldest first: a numpy structured array of RECORDs (`flows["packets"]`, ...)."""

    def __init__(self, records: np.ndarray) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, field: str) -> np.ndarray:
        return self.records[field]

    @staticmethod
    def concat(parts: list[Flows]) -> Flows:
        return Flows(np.concatenate([p.records for p in parts]) if parts else np.zeros(0, RECORD))


@dataclass
class MeterStats:
    packets: int = 0
    ip_packets: int = 0
    ip_bytes: int = 0  # IP total lengths: what the flow records' bytes add up to
    non_ip_packets: int = 0  # ARP, LLDP, ...: not flows, but counted
    non_ip_bytes: int = 0
    fragments: int = 0
    flows: int = 0  # records emitted
    first_ns: int = 0  # the metered packets' time span
    last_ns: int = 0


class FlowMeter:
    def __init__(self, active_timeout: float = 1800.0, idle_timeout: float = 15.0,
                 until_ns: int | None = None) -> None:
        """until_ns: packets after this time (the end of the capture window) are not metered."""
        self._meter = _native.Meter(int(active_timeout * NS), int(idle_timeout * NS),
                                    -1 if until_ns is None else until_ns)
        self._flows = 0

    @property
    def stats(self) -> MeterStats:
        s = self._meter.stats()
        return MeterStats(**{k: s[k] for k in MeterStats.__dataclass_fields__ if k != "flows"}, flows=self._flows)

    @property
    def clock(self) -> int:
        """The newest packet time seen, ns."""
        return self._meter.stats()["clock"]

    def feed(self, buf: bytes, offsets: bytes, big_endian: bool, nanosecond: bool) -> Flows:
        """Meter the records of buf that start at offsets (pcapfile.Records); return the flows that finished
        (ended, idle, or past the active timeout at the newest packet's time)."""
        self._meter.feed(buf, offsets, big_endian, nanosecond)
        self._meter.expire(self.clock)
        return self._take()

    def expire(self, now_ns: int) -> Flows:
        """Finish open flows that are idle or too old at time now_ns."""
        self._meter.expire(now_ns)
        return self._take()

    def flush(self) -> Flows:
        """Finish every open flow (the end of the capture window)."""
        self._meter.flush()
        return self._take()

    def _take(self) -> Flows:
        records = np.frombuffer(self._meter.take(), dtype=RECORD)
        self._flows += len(records)
        return Flows(records[np.argsort(records["first"], kind="stable")])
