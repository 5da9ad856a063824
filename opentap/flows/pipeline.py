"""Feeding pcap data to the meter: whole files (offline), or chunks that tcpdump is still writing (live)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from opentap.capture import pcapfile

from .meter import FlowMeter, Flows

BLOCK = 1 << 20  # bytes of pcap per batch: per-call overheads vanish, and a block stays in cache between walk and meter
DLT_EN10MB = 1


def _batch(meter: FlowMeter, block: pcapfile.Records, path: Path) -> Flows:
    header = block.header
    if header.linktype != DLT_EN10MB:
        raise pcapfile.PcapError(f"{path}: link type {header.linktype} is not Ethernet; cannot meter it")
    return meter.feed(block.buf, block.offsets, header.byteorder == "big", header.nanosecond)


def _read_ahead(paths: Iterable[Path], block: int) -> Iterator[tuple[Path, pcapfile.Records]]:
    """The files' blocks, read and walked by a thread one block ahead of the caller: reading and walking
    release the GIL, and so do metering and formatting, so on two cores the two halves overlap."""
    q: queue.Queue[tuple[Path, pcapfile.Records] | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def reader() -> None:
        try:
            for path in paths:
                for records in pcapfile.read_from(path, 0, block):
                    while not stop.is_set():
                        try:
                            q.put((path, records), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            q.put(None)
        except BaseException as e:  # handed to the caller, raised there
            q.put(e)

    thread = threading.Thread(target=reader, name="pcap-read-ahead", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # the caller stopped early (an error, a closed pipe): let the reader end
        thread.join()


def meter_files(paths: Iterable[Path], meter: FlowMeter, block: int = BLOCK) -> Iterator[Flows]:
    """Meter files in order and finish every flow at the end."""
    for path, records in _read_ahead(paths, block):
        yield _batch(meter, records, path)
    yield meter.flush()


class ChunkFollower:
    """Meters the chunks of a running capture as they grow, remembering how far each has been read. Files
    are tracked by inode, because a chunk is renamed (published) when tcpdump closes it."""

    def __init__(self, meter: FlowMeter, block: int = BLOCK) -> None:
        self.meter, self.block = meter, block
        self.offsets: dict[int, int] = {}

    def poll(self, chunks: list[Path]) -> Iterator[Flows]:
        for path in chunks:
            try:
                ino = path.stat().st_ino
            except FileNotFoundError:
                continue  # renamed since listed: the next poll sees it under its new name
            for records in pcapfile.read_from(path, self.offsets.get(ino, 0), self.block):
                self.offsets[ino] = records.next_offset
                yield _batch(self.meter, records, path)

    def consumed(self, path: Path) -> bool:
        """Whether every whole record of path has been metered."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        return self.offsets.get(st.st_ino, 0) >= st.st_size
