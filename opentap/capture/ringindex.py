"""A ring block's index: its records in stretches of about a megabyte, each with its time range, byte range and
a summary of what it holds (addresses, ports, IP protocols), so a query reads only the stretches whose time
overlaps its window and whose summary may match its filter (ringfilter.py).

The summary is taken with the flow meter's C decoder (one small meter per stretch, flushed at its end: its
flow keys are the stretch's addresses, ports and protocols). What libpcap could match but the meter does not
decode is accounted for so that skipping stays safe: ARP and RARP addresses (`host X` matches them) are added
from the frames, and a frame that claims to be IPv4 or IPv6 but is cut short or malformed marks its stretch
"opaque" (it may match anything). A block that is not Ethernet is opaque throughout.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import struct
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from opentap import _native
from opentap.capture.ringfilter import BLOOM_BITS, Address, Predicate, Summary, addr_key, bloom_positions, port_key
from opentap.flows.meter import FlowMeter
from opentap.pcap import pcapfile

VERSION = 1
MAX_LISTED = 256  # addresses or ports per stretch: beyond this a Bloom filter stands for them (index size)
STRETCH_BYTES = 1 << 20  # a query reads whole stretches; 256 KiB ones read a fifth less for one host here but cost
# half again as much CPU to index (bench/rings.py)
DLT_EN10MB = 1
_KEY = struct.Struct("=16s16sHHHBB")  # fm_flow's key (csrc/flow.h), after first, last, packets, bytes, smac, dmac
_KEY_AT = 48
_FOREVER = 1e9  # seconds: a stretch's flows never time out inside it; flush() ends them all


def _summary_json(s: Summary) -> dict[str, Any]:
    return {"addrs": None if s.addrs is None else sorted(s.addrs),
            "ports": None if s.ports is None else sorted(s.ports), "protos": sorted(s.protos),
            "opaque": s.opaque, **({"bloom": base64.b64encode(s.bloom).decode()} if s.bloom else {})}


def _summary(d: dict[str, Any]) -> Summary:
    addrs = None if d["addrs"] is None else frozenset(str(a) for a in d["addrs"])
    ports = None if d["ports"] is None else frozenset(int(p) for p in d["ports"])
    bloom = base64.b64decode(d["bloom"]) if d.get("bloom") else None
    if bloom is not None and len(bloom) * 8 != BLOOM_BITS:
        bloom = None  # another size than this version's: no answer from it, every lookup "may"
    return Summary(addrs, ports, frozenset(int(p) for p in d["protos"]), bool(d["opaque"]), bloom)


@dataclass(frozen=True)
class Stretch:
    offset: int  # the file offset of its first record
    end: int  # one past its last record
    first_ns: int
    last_ns: int
    packets: int
    raw: dict[str, Any]  # the summary as stored: decoded only for stretches a query's window reaches

    @cached_property
    def summary(self) -> Summary:
        return _summary(self.raw)

    def to_json(self) -> dict[str, Any]:
        return {"offset": self.offset, "end": self.end, "first_ns": self.first_ns, "last_ns": self.last_ns,
                "packets": self.packets, **self.raw}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Stretch:
        raw = {k: d[k] for k in ("addrs", "ports", "protos", "opaque", "bloom") if k in d}
        return cls(int(d["offset"]), int(d["end"]), int(d["first_ns"]), int(d["last_ns"]), int(d["packets"]), raw)


@dataclass(frozen=True)
class BlockIndex:
    first_ns: int
    last_ns: int
    packets: int
    stretches: tuple[Stretch, ...]

    def select(self, start_ns: int, stop_ns: int, may: Predicate) -> list[Stretch]:
        """The stretches with a packet stamped in [start_ns, stop_ns] that the filter may match."""
        return [s for s in self.stretches if s.last_ns >= start_ns and s.first_ns <= stop_ns and may(s.summary)]

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "first_ns": self.first_ns, "last_ns": self.last_ns, "packets": self.packets,
                "stretches": [s.to_json() for s in self.stretches]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BlockIndex:
        if d.get("version") != VERSION:
            raise ValueError(f"index version {d.get('version')!r}, not {VERSION}")
        return cls(int(d["first_ns"]), int(d["last_ns"]), int(d["packets"]),
                   tuple(Stretch.from_json(s) for s in d["stretches"]))


def _flow_keys(data: bytes, addrs: set[Address], ports: set[int], protos: set[int]) -> None:
    for at in range(0, len(data), _native.FLOW_SIZE):
        src, dst, sport, dport, _vlan, proto, ip = _KEY.unpack_from(data, at + _KEY_AT)
        if ip == 4:
            addrs.update((ipaddress.IPv4Address(src[12:]), ipaddress.IPv4Address(dst[12:])))
        else:
            addrs.update((ipaddress.IPv6Address(src), ipaddress.IPv6Address(dst)))
        ports.update((sport, dport))
        protos.add(proto)


def _non_ip(block: pcapfile.Block, addrs: set[Address]) -> bool:
    """Add ARP/RARP addresses; True when a frame that says IPv4/IPv6 (untagged: where libpcap looks without
    `vlan`) is too short or malformed for the meter, so libpcap might still match it."""
    buf = block.buf
    opaque = False
    for _ts, f, caplen, _wire, _linktype, _iface in pcapfile.DESC.iter_unpack(block.descs):
        if caplen < 14:
            continue
        ethertype = buf[f + 12] << 8 | buf[f + 13]
        if ethertype == 0x0800:
            opaque |= caplen < 34 or buf[f + 14] >> 4 != 4
        elif ethertype == 0x86DD:
            opaque |= caplen < 54 or buf[f + 14] >> 4 != 6
        elif ethertype in (0x0806, 0x8035):
            if caplen < 42:
                opaque = True
            else:
                addrs.update((ipaddress.IPv4Address(bytes(buf[f + 28:f + 32])),
                              ipaddress.IPv4Address(bytes(buf[f + 38:f + 42]))))
    return opaque


def _bloom(addrs: set[Address], ports: set[int]) -> bytes:
    bits = bytearray(BLOOM_BITS // 8)
    for key in [addr_key(a) for a in addrs] + [port_key(p) for p in ports]:
        for i in bloom_positions(key):
            bits[i >> 3] |= 1 << (i & 7)
    return bytes(bits)


def _stretch(block: pcapfile.Block) -> Stretch:
    meter = FlowMeter(_FOREVER, _FOREVER)
    ended = meter.feed(block.buf, block.descs)  # those a FIN or RST ended
    flows = ended.data + meter.flush().data
    stats = meter.stats
    addrs: set[Address] = set()
    ports: set[int] = set()
    protos: set[int] = set()
    opaque = block.linktypes != (DLT_EN10MB,)
    if not opaque:
        _flow_keys(flows, addrs, ports, protos)
        if stats.non_ip_packets:
            opaque = _non_ip(block, addrs)
    many = len(addrs) > MAX_LISTED or len(ports) > MAX_LISTED
    summary = Summary(frozenset(map(str, addrs)) if len(addrs) <= MAX_LISTED else None,
                      frozenset(ports) if len(ports) <= MAX_LISTED else None, frozenset(protos), opaque,
                      _bloom(addrs, ports) if many else None)
    start = block.next_offset - block.end
    return Stretch(start, block.next_offset, stats.first_ns, stats.last_ns, stats.packets, _summary_json(summary))


def build(path: Path, stretch_bytes: int = STRETCH_BYTES) -> BlockIndex:
    """Index one closed pcap block."""
    stretches = tuple(_stretch(b) for b in pcapfile.read_packets(path, 0, stretch_bytes) if b.end)
    if not stretches:
        return BlockIndex(0, 0, 0, ())
    return BlockIndex(min(s.first_ns for s in stretches), max(s.last_ns for s in stretches),
                      sum(s.packets for s in stretches), stretches)


def write(index: BlockIndex, path: Path, mode: int = 0o600) -> None:
    """Under a hidden name, fsynced, then renamed: a reader sees a whole index or none."""
    hidden = path.with_name(f".{path.name}.tmp")
    with os.fdopen(os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "w") as f:
        os.fchmod(f.fileno(), mode)
        json.dump(index.to_json(), f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(hidden, path)


def read(path: Path) -> BlockIndex:
    """A block's index; an index never changes once written, so the parsed one is kept while the file is the
    same (its inode and time) and read again otherwise."""
    st = os.stat(path)
    return _read(str(path), st.st_ino, st.st_mtime_ns)


@lru_cache(maxsize=4096)
def _read(path: str, _ino: int, _mtime_ns: int) -> BlockIndex:
    with open(path) as f:
        return BlockIndex.from_json(json.load(f))
