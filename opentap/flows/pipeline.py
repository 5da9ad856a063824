"""Feeding capture data to the meter: whole files (offline, pcap or pcapng), or chunks that tcpdump is still
writing (live, pcap)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from opentap._native import linktype_known
from opentap.pcap import linktypes, pcapfile

from .meter import FlowMeter, Flows

BLOCK = 1 << 20  # bytes per batch: per-call overheads vanish, and a block stays in cache between scan and meter


def meterable(path: Path, types: tuple[int, ...]) -> None:
    """A file none of whose interfaces has a link type the meter decodes cannot be metered: say which it has.
    (A pcapng file with some interfaces of other types is metered; their packets are counted, not decoded.)"""
    if types and not any(linktype_known(t) for t in types):
        names = ", ".join(dict.fromkeys(linktypes.name(t) for t in types))
        raise pcapfile.PcapError(f"{path}: {names} cannot be metered (no IP header can be found in its frames)")


def _batch(meter: FlowMeter, block: pcapfile.Block, path: Path) -> Flows:
    if block.descs:
        meterable(path, block.linktypes)
    return meter.feed(block.buf, block.descs)


def meter_files(paths: Iterable[Path], meter: FlowMeter, block: int = BLOCK,
                cut: list[pcapfile.Damage] | None = None) -> Iterator[Flows]:
    """Meter files in order and finish every flow at the end. cut: records cut off at the end of a file are
    listed there."""
    for path in paths:
        for records in pcapfile.read_packets(path, 0, block, cut=cut, ahead=True):
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
            for records in pcapfile.read_packets(path, self.offsets.get(ino, 0), self.block):
                self.offsets[ino] = records.next_offset
                self.records += records.packets
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
