"""The flow meter: decoded packets -> unidirectional flow records, vectorised per batch.

State between batches is a table of open flows with the same columns as a packet row (a packet is a flow of
one). Each batch is concatenated to the open table, grouped by flow key, sorted by time, and cut into flows
where a rule says so: idle gap > idle timeout, a FIN or RST ended the previous part, or the flow grew older
than the active timeout. Because every rule looks only at packet times, the result does not depend on where
batches begin or end: metering a file in one batch or in a thousand gives the same records.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .decode import Packets

KEY = ("ip", "src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport", "proto", "vlan")
TCP_FIN, TCP_RST = 0x01, 0x04
NS = 1_000_000_000


@dataclass
class Flows:
    ip: np.ndarray
    src_hi: np.ndarray
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    sport: np.ndarray
    dport: np.ndarray
    proto: np.ndarray
    vlan: np.ndarray
    first: np.ndarray  # ns
    last: np.ndarray
    packets: np.ndarray
    bytes: np.ndarray
    flags: np.ndarray  # TCP flags ORed over the flow
    tos: np.ndarray  # of the first packet
    smac: np.ndarray
    dmac: np.ndarray
    ended: np.ndarray  # bool: a FIN or RST closed it

    def __len__(self) -> int:
        return len(self.first)

    def take(self, idx: np.ndarray) -> Flows:
        return Flows(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Flows]) -> Flows:
        return Flows(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Flows)})

    @staticmethod
    def empty() -> Flows:
        return Flows(**{f.name: np.zeros(0, dtype=bool if f.name == "ended" else
                                         np.uint64 if f.name in ("src_hi", "src_lo", "dst_hi", "dst_lo", "smac",
                                                                 "dmac") else np.int64)
                        for f in fields(Flows)})

    @staticmethod
    def from_packets(p: Packets) -> Flows:
        ip = p.ip != 0
        flags = p.tcp_flags[ip]
        proto = p.proto[ip]
        return Flows(ip=p.ip[ip].astype(np.int64), src_hi=p.src_hi[ip], src_lo=p.src_lo[ip], dst_hi=p.dst_hi[ip],
                     dst_lo=p.dst_lo[ip], sport=p.sport[ip], dport=p.dport[ip], proto=proto, vlan=p.vlan[ip],
                     first=p.ts_ns[ip], last=p.ts_ns[ip], packets=np.ones(int(ip.sum()), dtype=np.int64),
                     bytes=p.ip_bytes[ip], flags=flags, tos=p.tos[ip], smac=p.smac[ip], dmac=p.dmac[ip],
                     ended=(proto == 6) & ((flags & (TCP_FIN | TCP_RST)) != 0))


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


def _mix(h: np.ndarray, x: np.ndarray) -> np.ndarray:
    h = (h ^ x.astype(np.uint64)) * np.uint64(0x9E3779B97F4A7C15)
    return h ^ (h >> np.uint64(31))


def group_ids(f: Flows) -> np.ndarray:
    """A dense id per distinct flow key. A 64-bit hash sorts fast; a collision (never seen, but possible) is
    caught by comparing every key column with its group's first row, and then we group exactly instead."""
    h = np.zeros(len(f), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in KEY:
            h = _mix(h, getattr(f, name))
    _, first_idx, gid = np.unique(h, return_index=True, return_inverse=True)
    gid = gid.ravel()
    rep = first_idx[gid]
    if all(np.array_equal(getattr(f, n), getattr(f, n)[rep]) for n in KEY):
        return gid
    keys = np.stack([getattr(f, n).astype(np.uint64) for n in KEY], axis=1)
    return np.unique(keys, axis=0, return_inverse=True)[1].ravel()


class FlowMeter:
    def __init__(self, active_timeout: float = 1800.0, idle_timeout: float = 15.0,
                 until_ns: int | None = None) -> None:
        self.active_ns, self.idle_ns = int(active_timeout * NS), int(idle_timeout * NS)
        self.until_ns = until_ns  # packets after this time (the end of the capture window) are not metered
        self.open = Flows.empty()
        self.stats = MeterStats()
        self.clock = 0  # the newest packet time seen, ns

    def feed(self, p: Packets) -> Flows:
        """Meter one batch; return the flows it finished (ended, idle, or past the active timeout)."""
        if self.until_ns is not None and len(p) and p.ts_ns.max() > self.until_ns:
            p = p.take(p.ts_ns <= self.until_ns)
        ip = p.ip != 0
        self.stats.packets += len(p)
        self.stats.ip_packets += int(ip.sum())
        self.stats.non_ip_packets += int((~ip).sum())
        self.stats.non_ip_bytes += int(p.wire_len[~ip].sum())
        self.stats.ip_bytes += int(p.ip_bytes[ip].sum())
        self.stats.fragments += int(p.fragment.sum())
        if len(p):
            self.clock = max(self.clock, int(p.ts_ns.max()))
            lo = int(p.ts_ns.min())
            self.stats.first_ns = min(self.stats.first_ns, lo) if self.stats.first_ns else lo
            self.stats.last_ns = self.clock
        rows = Flows.concat([self.open, Flows.from_packets(p)])
        done, self.open = self._cut(rows)
        return self._emit(Flows.concat([done, self.expire_table(self.clock)]))

    def expire(self, now_ns: int) -> Flows:
        """Finish open flows that are idle or too old at time now_ns (a packet-clock time)."""
        return self._emit(self.expire_table(now_ns))

    def expire_table(self, now_ns: int) -> Flows:
        old = ((now_ns - self.open.last) > self.idle_ns) | ((now_ns - self.open.first) > self.active_ns)
        gone = self.open.take(np.flatnonzero(old))
        self.open = self.open.take(np.flatnonzero(~old))
        return gone

    def flush(self) -> Flows:
        """Finish every open flow (the end of the capture window)."""
        gone, self.open = self.open, Flows.empty()
        return self._emit(gone)

    def _emit(self, f: Flows) -> Flows:
        f = f.take(np.argsort(f.first, kind="stable"))
        self.stats.flows += len(f)
        return f

    def _cut(self, rows: Flows) -> tuple[Flows, Flows]:
        """Split rows into finished flows and still-open flows."""
        if not len(rows):
            return rows, rows
        gid = group_ids(rows)
        order = np.lexsort((rows.first, gid))
        r = rows.take(order)
        g = gid[order]
        new_group = np.r_[True, g[1:] != g[:-1]]
        starts = new_group | np.r_[False, ((r.first[1:] - r.last[:-1]) > self.idle_ns) | r.ended[:-1]]
        starts = self._active_cuts(r.first, starts)
        idx = np.flatnonzero(starts)
        ends = np.r_[idx[1:], len(r)] - 1
        seg = r.take(idx)
        seg.first = np.minimum.reduceat(r.first, idx)
        seg.last = np.maximum.reduceat(r.last, idx)
        seg.packets = np.add.reduceat(r.packets, idx)
        seg.bytes = np.add.reduceat(r.bytes, idx)
        seg.flags = np.bitwise_or.reduceat(r.flags, idx)
        seg.ended = r.ended[ends]
        last_of_group = np.r_[new_group[idx[1:]], True]
        still_open = last_of_group & ~seg.ended
        return seg.take(np.flatnonzero(~still_open)), seg.take(np.flatnonzero(still_open))

    def _active_cuts(self, first: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Cut flows older than the active timeout. Sequential by nature (each cut moves the next flow's
        start), so only the few flows that run that long are walked in Python."""
        seg = np.cumsum(starts) - 1
        seg_first = first[np.flatnonzero(starts)][seg]
        over = (first - seg_first) > self.active_ns
        if not over.any():
            return starts
        starts = starts.copy()
        idx = np.flatnonzero(starts)
        ends = np.r_[idx[1:], len(first)]
        for s in np.unique(seg[over]):
            begin = first[idx[s]]
            for i in range(idx[s] + 1, ends[s]):
                if first[i] - begin > self.active_ns:
                    starts[i] = True
                    begin = first[i]
        return starts
