"""The registry of capture types: what each one captures, which options it takes, how it is retrieved.

A new type (netflow, sensor) is one more entry here plus its driver; the API and engine read only this table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opentap.capture import linkstats, netflow, packetcsv, packets, pcapfile
from opentap.flows import nfcsv

PCAP_MEDIA = "application/vnd.tcpdump.pcap"
CSV_MEDIA = "text/csv"


class Driver(Protocol):
    pid: int | None

    def start(self) -> None: ...
    def alive(self) -> bool: ...
    def failure(self) -> str: ...
    def tick(self) -> None: ...
    def stop(self) -> Any: ...


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


@dataclass(frozen=True)
class Format:
    media_type: str
    suffix: str
    produce: Callable[[Path], Iterator[bytes]]
    missing: Callable[[Path], str | None] = lambda _d: None  # why this format cannot be served, if it cannot


@dataclass(frozen=True)
class Totals:
    packets: int = 0
    bytes: int = 0
    drops_kernel: int = 0
    drops_interface: int = 0
    stats: dict[str, int] = field(default_factory=dict)


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


def _pinned(directory: Path, render: Callable[[list[Path]], Iterator[bytes]]) -> Iterator[bytes]:
    with packets.pinned_chunks(directory) as paths:
        yield from render(paths)


def _drops(directory: Path) -> tuple[int, int]:
    stats = [packets.parse_stats(p.read_text(errors="replace")) for p in sorted(directory.glob("tcpdump-*.log"))]
    return sum(s.dropped_kernel for s in stats), sum(s.dropped_interface for s in stats)


def _packet_totals(directory: Path) -> Totals:
    counted = pcapfile.count(packets.chunk_files(directory))
    return Totals(counted.packets, counted.wire_bytes, *_drops(directory))


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
        return Totals(packets=max(0, sum(1 for _ in f) - 1))  # rows sampled, not packets on the wire


ETHERNET = CaptureType(
    name="ethernet", point_kind="network", description="full packets at the observation point (pcap)",
    options=frozenset({"filter", "snaplen"}),
    make_driver=lambda c: packets.PacketDriver(
        c.directory, c.interface, c.segment, snaplen=c.options.get("snaplen", 262144), bpf=c.options.get("filter"),
        buffer_kib=c.buffer_kib, chunk_mb=c.chunk_mb, stop_ns=c.stop_ns),
    formats={
        "pcap": Format(PCAP_MEDIA, "pcap", lambda d: _pinned(d, pcapfile.stream_merged)),
        "csv": Format(CSV_MEDIA, "csv", lambda d: _pinned(d, lambda p: _encode(packetcsv.csv_lines(p)))),
    },
    default_format="pcap", totals=_packet_totals,
    finalize=lambda d: packets.publish_closed(d, keep_last=False), stop_grace=packets.STOP_GRACE,
)

LINKSTATS = CaptureType(
    name="linkstats", point_kind="network",
    description="the interface's kernel counters sampled every `period` ms (CSV)",
    options=frozenset({"period"}),
    make_driver=lambda c: linkstats.LinkstatsDriver(c.directory, c.interface, c.options.get("period", 1000)),
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
    options=frozenset({"filter", "snaplen", "keep_packets"}),
    make_driver=lambda c: netflow.NetflowDriver(
        c.directory, c.interface, c.segment, snaplen=c.options.get("snaplen", 262144), bpf=c.options.get("filter"),
        buffer_kib=c.buffer_kib, chunk_mb=c.chunk_mb, active=c.flow_active_timeout, idle=c.flow_idle_timeout,
        keep_packets=bool(c.options.get("keep_packets", False)), stop_ns=c.stop_ns),
    formats={
        "csv": Format(CSV_MEDIA, "csv", _flows_csv),
        "pcap": Format(PCAP_MEDIA, "pcap", lambda d: _pinned(d, pcapfile.stream_merged), missing=_kept_packets),
    },
    default_format="csv", totals=_flow_totals, finalize=netflow.finalize, stop_grace=packets.STOP_GRACE,
)

REGISTRY: dict[str, CaptureType] = {t.name: t for t in (NETFLOW, ETHERNET, LINKSTATS)}
