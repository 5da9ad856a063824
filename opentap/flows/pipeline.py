"""Feeding pcap data to the meter: whole files (offline), or chunks that tcpdump is still writing (live)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from opentap.pcap import pcapfile

from .meter import FlowMeter, Flows

BLOCK = 1 << 20  # bytes of pcap per batch: per-call overheads vanish, and a block stays in cache between walk and meter
DLT_EN10MB = 1


def _batch(meter: FlowMeter, block: pcapfile.Records, path: Path) -> Flows:
    header = block.header
    if header.linktype != DLT_EN10MB:
        raise pcapfile.PcapError(f"{path}: link type {header.linktype} is not Ethernet; cannot meter it")
    return meter.feed(block.buf, block.offsets, header.byteorder == "big", header.nanosecond)


def meter_files(paths: Iterable[Path], meter: FlowMeter, block: int = BLOCK) -> Iterator[Flows]:
    """Meter files in order and finish every flow at the end."""
    for path in paths:
        for records in pcapfile.read_from(path, 0, block):
            yield _batch(meter, records, path)
    yield meter.flush()


class ChunkFollower:
    """Meters the chunks of a running capture as they grow, remembering how far each has been read. Files
    are tracked by inode, because a chunk is renamed (published) when tcpdump closes it."""

    def __init__(self, meter: FlowMeter, block: int = BLOCK) -> None:
        self.meter, self.block = meter, block
        self.offsets: dict[int, int] = {}
        self.records = 0  # records read, to compare with what tcpdump says it wrote

    def poll(self, chunks: list[Path]) -> Iterator[Flows]:
        for path in chunks:
            try:
                ino = path.stat().st_ino
            except FileNotFoundError:
                continue  # renamed since listed: the next poll sees it under its new name
            for records in pcapfile.read_from(path, self.offsets.get(ino, 0), self.block):
                self.offsets[ino] = records.next_offset
                self.records += len(records.offsets) // 8
                yield _batch(self.meter, records, path)

    def remove(self, path: Path) -> None:
        """Delete a chunk that has been read, and forget its inode: the next chunk tcpdump creates may well get
        the same inode number, and must then be read from its start, not from where this one ended."""
        try:
            self.offsets.pop(path.stat().st_ino, None)
        except FileNotFoundError:
            return
        path.unlink()

    def consumed(self, path: Path) -> bool:
        """Whether every whole record of path has been metered."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        return self.offsets.get(st.st_ino, 0) >= st.st_size
