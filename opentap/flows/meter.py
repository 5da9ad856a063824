"""The flow meter: pcap records -> unidirectional flow records.

The per-packet work (decoding, the open-flow table, the timeout rules) is C (csrc/: packet.c, table.c), because
Python with numpy ran at half the speed of the pipeline it replaces (bench/flows.py). A packet joins the open flow
of its key (addresses, ports, protocol, VLAN) unless the idle gap, the active timeout or a FIN/RST before it
ends that flow. Every rule looks only at packet times, so where batches begin or end changes nothing. This
module drives it and keeps the counters.
"""

from __future__ import annotations

from typing import Any

from opentap import _native

NS = 1_000_000_000
# csrc/flow.h's fm_flow, field for field (native byte order): for Flows.array()
RECORD_FIELDS = [
    ("first", "=i8"), ("last", "=i8"), ("packets", "=i8"), ("bytes", "=i8"), ("smac", "=u8"), ("dmac", "=u8"),
    ("src", "u1", 16), ("dst", "u1", 16),  # network order; IPv4 in the last 4 bytes
    ("sport", "=u2"), ("dport", "=u2"), ("vlan", "=u2"), ("proto", "u1"), ("ip", "u1"),
    ("flags", "u1"), ("tos", "u1"), ("ended", "u1"), ("used", "u1"), ("order", "=u4"),
]


class Flows:
    """Finished flows, oldest first, as the C meter's records back to back, with their totals. The device
    only passes them on to the CSV writer, so it needs no numpy; array() gives the columns for analysis.
    (Plain classes here, not dataclasses: `opentap flows` starts faster without importing them.)"""

    __slots__ = ("data", "count", "packets", "bytes")

    def __init__(self, data: bytes = b"", count: int = 0, packets: int = 0, bytes: int = 0) -> None:  # noqa: A002
        self.data, self.count, self.packets, self.bytes = data, count, packets, bytes

    def __repr__(self) -> str:
        return f"Flows(count={self.count}, packets={self.packets}, bytes={self.bytes})"

    def __len__(self) -> int:
        return self.count

    @staticmethod
    def concat(parts: list[Flows]) -> Flows:
        return Flows(b"".join(p.data for p in parts), sum(p.count for p in parts), sum(p.packets for p in parts),
                     sum(p.bytes for p in parts))

    def array(self) -> Any:
        """A numpy structured array of the records (`flows.array()["proto"]`, ...)."""
        import numpy as np

        dtype = np.dtype(RECORD_FIELDS)
        assert dtype.itemsize == _native.FLOW_SIZE, "RECORD_FIELDS is out of step with csrc/flow.h"
        return np.frombuffer(self.data, dtype=dtype)


class MeterStats:
    """The meter's counts (vars() of it is what a netflow capture's meter-NNN.json holds)."""

    FIELDS = (
        "packets", "ip_packets",
        "ip_bytes",  # IP total lengths: what the flow records' bytes add up to
        "non_ip_packets", "non_ip_bytes",  # ARP, LLDP, ...: not flows, but counted
        "fragments", "flows",  # flows: records emitted
        "first_ns", "last_ns",  # the metered packets' time span
        "other_link_packets",  # pcapng: of interfaces whose link type the meter does not decode (in non_ip too)
    )

    def __init__(self, **counts: int) -> None:
        for name in self.FIELDS:
            setattr(self, name, counts.pop(name, 0))
        if counts:
            raise TypeError(f"unknown meter counts: {', '.join(counts)}")

    packets: int
    ip_packets: int
    ip_bytes: int
    non_ip_packets: int
    non_ip_bytes: int
    fragments: int
    flows: int
    first_ns: int
    last_ns: int
    other_link_packets: int


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
        return MeterStats(**{k: s[k] for k in MeterStats.FIELDS if k != "flows"}, flows=self._flows)

    @property
    def clock(self) -> int:
        """The newest packet time seen, ns."""
        return self._meter.clock

    def feed(self, buf: bytes | bytearray | memoryview, descs: bytes) -> Flows:
        """Meter the packets of buf that descs describe (pcapfile.Block); return the flows that finished (ended,
        or idle or past the active timeout at the newest packet's time).

        The expiry scan walks the whole table, so the C meter runs it between packets whenever the newest packet
        time has moved on by a quarter of the idle timeout (at least a second): that depends on the packets alone,
        never on how they were cut into batches."""
        self._meter.feed(buf, descs)
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
        flows = Flows(*self._meter.take())
        self._flows += flows.count
        return flows
