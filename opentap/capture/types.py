"""What a capture type is made of: its driver (the protocol every driver follows), the context a driver is
started with, its retrieval formats and its totals. Each type declares its CaptureType beside its driver
(ethernet.py, netflow.py, linkstats.py, sensor.py); registry.py lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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
    start_ns: int = 0  # the start of the window: a sampler's schedule counts from it

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
    point_kind: str  # "network" or "sensor": which observation points it runs on (config's or [sensors.*])
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


def encode_lines(lines: Iterator[str]) -> Iterator[bytes]:
    """Text lines as bytes, batched into ~64 KiB writes."""
    buf: list[str] = []
    size = 0
    for line in lines:
        buf.append(line)
        size += len(line)
        if size >= 65536:
            yield "".join(buf).encode()
            buf, size = [], 0
    if buf:
        yield "".join(buf).encode()


def file_bytes(paths: list[Path]) -> Iterator[bytes]:
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                yield block
