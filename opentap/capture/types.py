"""The registry of capture types: what each one captures, which options it takes, how it is retrieved.

A new type (netflow, sensor) is one more entry here plus its driver; the API and engine read only this table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opentap.capture import linkstats, netflow, packets
from opentap.flows import nfcsv
from opentap.pcap import packetcsv, pcapfile

PCAP_MEDIA = "application/vnd.tcpdump.pcap"
CSV_MEDIA = "text/csv"


class Driver(Protocol):
    pid: int | None

    def start(self) -> None: ...
    def alive(self) -> bool: ...
    def failure(self) -> str: ...
    def tick(self) -> None: ...
    def stop(self) -> list[str]:
        """End the capture and publish its data; return what makes the data incomplete (empty: nothing)."""
        ...


@dataclass(frozen=True)
class DriverContext:
    directory: Path
    interface: str
    segment: int
    options: dict[str, Any]
    buffer_kib: int
    chunk_mb: int
    flow_active_timeout: float
    flow_idle_timeout: float
    stop_ns: int  # the end of the window: data after it is cut off
    capture_user: str | None = None  # tcpdump runs as this user once the interface is open

    @property
    def bpf(self) -> str | None:
        """The caller's filter and the device's own (which leaves out the device's API and SSH traffic)."""
        parts = [f"({f})" for f in (self.options.get("filter"), self.options.get("device_filter")) if f]
        return " and ".join(parts) or None


@dataclass(frozen=True)
class Format:
    media_type: str
    suffix: str
    produce: Callable[[Path], Iterator[bytes]]
    missing: Callable[[Path], str | None] = lambda _d: None  # why this format cannot be served, if it cannot
    reads_chunks: bool = False  # made from the pcap chunks: a retrieve checks them for damage first


@dataclass(frozen=True)
class Totals:
    packets: int = 0
    bytes: int = 0
    drops_kernel: int = 0
    drops_interface: int = 0
    stats: dict[str, int] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # what the files show is wrong with the data (a damaged chunk, say)


@dataclass(frozen=True)
class CaptureType:
    name: str
    point_kind: str  # "network" or "sensor": which observation points it runs on
    description: str
    options: frozenset[str]
    make_driver: Callable[[DriverContext], Driver]
    formats: dict[str, Format]
    default_format: str
    totals: Callable[[Path], Totals]
    finalize: Callable[[Path], None]  # publish whatever a stopped (or crashed) driver left hidden
    # seconds the driver runs past the window: libpcap hands packets over in blocks (at least once a second)
    # and a block still filling when tcpdump is stopped is lost, so tcpdump stops later and the data is cut
    stop_grace: float = 0.0


def _encode(lines: Iterator[str]) -> Iterator[bytes]:
    buf: list[str] = []
    size = 0
    for line in lines:  # batch small lines into ~64 KiB writes
        buf.append(line)
        size += len(line)
        if size >= 65536:
            yield "".join(buf).encode()
            buf, size = [], 0
    if buf:
        yield "".join(buf).encode()


def _file_bytes(paths: list[Path]) -> Iterator[bytes]:
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                yield block


def _pinned(directory: Path, render: Callable[[list[Path], list[pcapfile.Damage]], Iterator[bytes]]
            ) -> Iterator[bytes]:
    """The chunks, opened before the first byte goes out; a damaged one ends at its last good record (the
    retrieve has checked them and told the capture beforehand)."""
    with packets.pinned_chunks(directory) as paths:
        yield from render(paths, [])


def damage(directory: Path) -> list[pcapfile.Damage]:
    """Damaged records in a capture's chunks (a fast walk over the record headers)."""
    found: list[pcapfile.Damage] = []
    pcapfile.count(packets.chunk_files(directory), damage=found)
    return found


def _merged(paths: list[Path], found: list[pcapfile.Damage]) -> Iterator[bytes]:
    return pcapfile.stream_merged(paths, damage=found)


def _drops(directory: Path) -> tuple[int, int]:
    stats = [packets.parse_stats(p.read_text(errors="replace")) for p in sorted(directory.glob("tcpdump-*.log"))]
    return sum(s.dropped_kernel for s in stats), sum(s.dropped_interface for s in stats)


def _packet_totals(directory: Path) -> Totals:
    found: list[pcapfile.Damage] = []
    counted = pcapfile.count(packets.chunk_files(directory), damage=found)
    return Totals(counted.packets, counted.wire_bytes, *_drops(directory), problems=tuple(map(str, found)))


def _flow_totals(directory: Path) -> Totals:
    stats = netflow.stats(directory)
    return Totals(stats.get("packets", 0), stats.get("ip_bytes", 0), *_drops(directory), stats=stats)


def _flows_csv(directory: Path) -> Iterator[bytes]:
    """The flow records as written, then nfdump's Summary trailer computed over them."""
    summary = nfcsv.Summary()
    files = netflow.data_files(directory)
    if not files:
        yield (nfcsv.HEADER + "\n").encode()
    for path in files:
        with open(path) as f:
            yield f.readline().encode()
            batch: list[str] = []
            for line in f:
                if not line.endswith("\n"):
                    break  # a line the meter is still writing
                summary.add_line(line)
                batch.append(line)
                if len(batch) == 4096:
                    yield "".join(batch).encode()
                    batch = []
            yield "".join(batch).encode()
    yield "".join(summary.lines(_flow_duration(directory))).encode()


def _flow_duration(directory: Path) -> float:
    """nfdump's averages are over the time the flows span; ours over the metered data's span."""
    stats = netflow.stats(directory)
    return (stats.get("last_ns", 0) - stats.get("first_ns", 0)) / 1e9


def _linkstats_totals(directory: Path) -> Totals:
    files = linkstats.data_files(directory)
    if not files:
        return Totals()
    with open(files[0]) as f:
        rows = max(0, sum(1 for _ in f) - 1)
    return Totals(packets=rows, stats=linkstats.sampler_stats(directory))  # rows sampled, not packets on the wire


ETHERNET = CaptureType(
    name="ethernet", point_kind="network", description="full packets at the observation point (pcap)",
    options=frozenset({"filter", "snaplen", "exclude_device_traffic"}),
    make_driver=lambda c: packets.PacketDriver(
        c.directory, c.interface, c.segment, snaplen=c.options.get("snaplen", 262144), bpf=c.bpf,
        buffer_kib=c.buffer_kib, chunk_mb=c.chunk_mb, stop_ns=c.stop_ns, user=c.capture_user),
    formats={
        "pcap": Format(PCAP_MEDIA, "pcap", lambda d: _pinned(d, _merged), reads_chunks=True),
        "csv": Format(CSV_MEDIA, "csv", lambda d: _pinned(d, lambda p, dmg: _encode(packetcsv.csv_lines(p, dmg))),
                      reads_chunks=True),
    },
    default_format="pcap", totals=_packet_totals,
    finalize=lambda d: packets.publish_closed(d, keep_last=False), stop_grace=packets.STOP_GRACE,
)

LINKSTATS = CaptureType(
    name="linkstats", point_kind="network",
    description="the interface's kernel counters sampled every `period` ms (CSV)",
    options=frozenset({"period"}),
    make_driver=lambda c: linkstats.LinkstatsDriver(c.directory, c.interface, c.options.get("period", 1000),
                                                    c.segment),
    formats={"csv": Format(CSV_MEDIA, "csv", lambda d: _file_bytes(linkstats.data_files(d)))},
    default_format="csv", totals=_linkstats_totals, finalize=linkstats.finalize,
)

def _kept_packets(directory: Path) -> str | None:
    if packets.chunk_files(directory):
        return None
    return "its packets were not kept (schedule it with keep_packets=true to keep them)"


NETFLOW = CaptureType(
    name="netflow", point_kind="network",
    description="flow records metered from the packets at the observation point (nfdump CSV)",
    options=frozenset({"filter", "snaplen", "keep_packets", "exclude_device_traffic"}),
    make_driver=lambda c: netflow.NetflowDriver(
        c.directory, c.interface, c.segment, snaplen=c.options.get("snaplen", 262144), bpf=c.bpf,
        buffer_kib=c.buffer_kib, chunk_mb=c.chunk_mb, active=c.flow_active_timeout, idle=c.flow_idle_timeout,
        keep_packets=bool(c.options.get("keep_packets", False)), stop_ns=c.stop_ns, user=c.capture_user),
    formats={
        "csv": Format(CSV_MEDIA, "csv", _flows_csv),
        "pcap": Format(PCAP_MEDIA, "pcap", lambda d: _pinned(d, _merged), missing=_kept_packets, reads_chunks=True),
    },
    default_format="csv", totals=_flow_totals, finalize=netflow.finalize, stop_grace=packets.STOP_GRACE,
)

REGISTRY: dict[str, CaptureType] = {t.name: t for t in (NETFLOW, ETHERNET, LINKSTATS)}
