"""Streaming reader for classic libpcap files, as written by ``tcpdump -w FILE -C SIZE``.

Capture chunks can be gigabytes and the newest one is normally still being written, so everything
here reads in bounded blocks, and a record cut short at the end of a file is treated as "not
written yet" (left out) rather than as corruption. pcapng is not supported.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

from opentap._native import walk

HEADER_LEN = 24
RECORD_HEADER_LEN = 16
BLOCK = 1 << 20
MAX_CAPLEN = 262144  # tcpdump's default snaplen and libpcap's limit for most link types
_HARD_MAX_CAPLEN = 1 << 24  # libpcap's largest per-linktype limit; caps absurd snaplens in headers

# Magic as read little-endian -> (byte order of the file, nanosecond timestamps).
_MAGICS: dict[int, tuple[str, bool]] = {
    0xA1B2C3D4: ("little", False),
    0xA1B23C4D: ("little", True),
    0xD4C3B2A1: ("big", False),
    0x4D3CB2A1: ("big", True),
}
_PCAPNG_MAGIC = 0x0A0D0D0A

# What a capture with no packets yet looks like: Ethernet, snaplen 262144, microseconds, v2.4.
EMPTY_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, MAX_CAPLEN, 1)


class PcapError(ValueError):
    """A capture file is malformed (bad magic, impossible record length) or chunks don't match."""


@dataclass(frozen=True)
class PcapHeader:
    byteorder: str  # "little" or "big", as for int.from_bytes
    nanosecond: bool
    snaplen: int
    linktype: int  # low 16 bits of the header's network field (the rest carries FCS flags)
    raw: bytes  # the 24 header bytes, re-emitted verbatim by stream_merged

    @property
    def struct_prefix(self) -> str:
        return "<" if self.byteorder == "little" else ">"

    @property
    def max_caplen(self) -> int:
        """Largest caplen accepted before a record is called corrupt.

        libpcap tolerates caplen > snaplen up to its per-linktype limit, so the bound is the larger
        of the two; a record header beyond it means we are no longer at a record boundary.
        """
        return min(max(self.snaplen, MAX_CAPLEN), _HARD_MAX_CAPLEN)


@dataclass(frozen=True)
class Damage:
    """Where a file stops making sense: the records before `offset` are good, nothing after it is read."""

    path: Path
    offset: int
    what: str

    def __str__(self) -> str:
        return f"{self.path.name} is damaged at byte {self.offset} ({self.what}): its data ends at the last " \
               "good record before it"


@dataclass(frozen=True)
class PcapStats:
    packets: int
    captured_bytes: int  # sum of caplen (what is stored in the files)
    wire_bytes: int  # sum of orig_len (what was on the wire)


def read_header(f: BinaryIO) -> PcapHeader | None:
    """Read the 24-byte global header; None if tcpdump has not written all of it yet."""
    raw = f.read(HEADER_LEN)
    if len(raw) < HEADER_LEN:
        return None
    (magic,) = struct.unpack_from("<I", raw)
    if magic not in _MAGICS:
        kind = "pcapng (unsupported)" if magic == _PCAPNG_MAGIC else "not a pcap file"
        raise PcapError(f"{kind}: magic 0x{magic:08x}")
    byteorder, nanosecond = _MAGICS[magic]
    snaplen, network = struct.unpack_from(("<" if byteorder == "little" else ">") + "II", raw, 16)
    return PcapHeader(byteorder, nanosecond, snaplen, network & 0xFFFF, raw)


def _files(paths: Iterable[Path]) -> Iterator[tuple[Path, BinaryIO, PcapHeader, int]]:
    """Open each chunk in turn: (path, file positioned after the header, header, size at open).

    Files without a complete header are skipped, and so are files that vanished since they were
    listed (``tcpdump -W`` deletes/reuses old chunks while we may be reading the list).
    """
    for path in paths:
        try:
            # Unbuffered: reads are either 24 bytes or whole blocks, and a buffer would only add
            # a copy (or read a full buffer just to get a header).
            f = path.open("rb", buffering=0)
        except FileNotFoundError:
            continue
        with f:
            size = os.fstat(f.fileno()).st_size
            try:
                header = read_header(f)
            except PcapError as e:
                raise PcapError(f"{path}: {e}") from None
            if header is not None:
                yield path, f, header, size


def read_file_header(path: Path) -> PcapHeader | None:
    """The header of one chunk; None if it has no complete header yet or no longer exists."""
    for _path, _f, header, _size in _files([path]):
        return header
    return None


class Block(NamedTuple):
    """``buf[:end]``: a run of whole records, starting at ``offsets`` (native int64s), whose caplen and
    orig_len add up to ``captured`` and ``wire``."""

    buf: bytes
    end: int
    offsets: bytes
    captured: int
    wire: int

    @property
    def packets(self) -> int:
        return len(self.offsets) // 8


def _blocks(
    path: Path, f: BinaryIO, header: PcapHeader, size: int, block: int, start: int = HEADER_LEN,
    damage: list[Damage] | None = None,
) -> Iterator[Block]:
    """The file's whole records from ``start``, a block at a time, in file order.

    Only the 16-byte record headers are looked at (by the C walk). A record cut by the end of a block
    is read again at the start of the next one (cheaper than copying a carry-over in front of every block),
    so memory stays near one block plus one record. Reading stops at the size seen when the file was
    opened: a live file must not be chased forever, and whatever partial record sits at that point is
    dropped.

    A record header that cannot be right (a caplen beyond any snaplen: we are no longer at a record boundary)
    raises PcapError, or, when a damage list is given, ends this file's data at the last good record and is
    added to the list: one damaged record must not make a whole capture unreadable.
    """
    big = header.byteorder == "big"
    base = start  # file offset of the next read
    need = 0  # the size of the record cut by the last block's end, if its header was whole
    while base < size:
        f.seek(base)
        want = min(max(block, need), size - base)
        buf = f.read(want)
        offsets, pos, missing, bad_caplen, captured, wire = walk(buf, big, header.max_caplen)
        if bad_caplen and damage is None:
            raise PcapError(f"{path}: corrupt record at offset {base + pos}: caplen {bad_caplen} > {header.max_caplen}")
        if pos:
            yield Block(buf, pos, offsets, captured, wire)
        if bad_caplen:
            assert damage is not None
            damage.append(Damage(path, base + pos, f"a record claims {bad_caplen} bytes, over the limit of "
                                                   f"{header.max_caplen}"))
            return
        if not pos and (len(buf) < want or base + len(buf) >= size):
            break  # the file ends inside a record (or shrank under us)
        need = max(len(buf) - pos + missing, RECORD_HEADER_LEN)  # a record longer than a block: read more
        base += pos


def iter_records(paths: Iterable[Path], damage: list[Damage] | None = None) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(timestamp_ns, orig_len, data)`` for every whole record of each file, in order."""
    for path, f, header, size in _files(paths):
        unpack = struct.Struct(header.struct_prefix + "IIII").unpack_from
        scale = 1 if header.nanosecond else 1000
        for buf, _end, offsets, _captured, _wire in _blocks(path, f, header, size, BLOCK, damage=damage):
            for pos in memoryview(offsets).cast("q"):
                sec, frac, caplen, orig_len = unpack(buf, pos)
                yield sec * 1_000_000_000 + frac * scale, orig_len, buf[pos + 16 : pos + 16 + caplen]


def _check_compatible(path: Path, first: PcapHeader, header: PcapHeader) -> None:
    """Records are copied verbatim under the first header, so every chunk must share its format."""
    if header.linktype != first.linktype:
        raise PcapError(
            f"{path}: linktype {header.linktype} differs from {first.linktype} of the first chunk"
        )
    if (header.byteorder, header.nanosecond) != (first.byteorder, first.nanosecond):
        raise PcapError(f"{path}: byte order/timestamp precision differs from the first chunk")


def stream_merged(paths: Sequence[Path], block: int = BLOCK, damage: list[Damage] | None = None) -> Iterator[bytes]:
    """One valid pcap byte stream from the chunk files in order.

    The first readable chunk's header is emitted once, then the whole records of every chunk,
    copied block-wise. All headers are checked before the first byte is produced, so a mismatch
    surfaces as an error on the first ``next()`` instead of as a broken stream half-way through.
    """
    if block <= 0:
        raise ValueError("block must be positive")
    first: PcapHeader | None = None
    ready: list[Path] = []
    for path, _f, header, _size in _files(paths):
        if first is None:
            first = header
        _check_compatible(path, first, header)
        ready.append(path)
    if first is None:
        yield EMPTY_HEADER
        return
    yield first.raw
    # Only chunks that had a header at check time are streamed; a reused chunk is re-checked.
    for path, f, header, size in _files(ready):
        _check_compatible(path, first, header)
        for b in _blocks(path, f, header, size, block, damage=damage):
            yield b.buf[:b.end]


def count(paths: Iterable[Path], block: int = BLOCK, damage: list[Damage] | None = None) -> PcapStats:
    """Count whole records: the C walk adds up the record headers of each block."""
    packets = captured = wire = 0
    for path, f, header, size in _files(paths):
        for b in _blocks(path, f, header, size, block, damage=damage):
            packets, captured, wire = packets + b.packets, captured + b.captured, wire + b.wire
    return PcapStats(packets, captured, wire)


class Records(NamedTuple):
    """A run of whole records: ``buf[:end]``, the records starting at ``offsets`` (native int64s)."""

    header: PcapHeader
    buf: bytes
    end: int
    next_offset: int  # file offset where reading should resume
    offsets: bytes


def read_from(path: Path, offset: int = 0, block: int = BLOCK) -> Iterator[Records]:
    """Whole records of one file from `offset` (0 = the first record), a block at a time. For following a
    file that tcpdump is still writing: call again later with the last next_offset."""
    for _path, f, header, size in _files([path]):
        pos = max(offset, HEADER_LEN)
        for b in _blocks(path, f, header, size, block, start=pos):
            pos += b.end
            yield Records(header, b.buf, b.end, pos, b.offsets)


def truncate_after(paths: Sequence[Path], ts_ns: int) -> int:
    """Cut the files (in time order) back to the records stamped at or before ts_ns; return how many
    records went. Records of one interface come in time order, so everything from the first later record on
    is past the cut."""
    removed = 0
    for path, f, header, size in _files(paths):
        unpack = struct.Struct(header.struct_prefix + "II").unpack_from
        scale = 1 if header.nanosecond else 1000
        pos, cut = HEADER_LEN, None
        for buf, end, offsets, _captured, _wire in _blocks(path, f, header, size, BLOCK):
            for i in memoryview(offsets).cast("q"):
                sec, frac = unpack(buf, i)
                if cut is None and sec * 1_000_000_000 + frac * scale > ts_ns:
                    cut = pos + i
                if cut is not None:
                    removed += 1
            pos += end
        if cut is not None:
            os.truncate(path, cut)
    return removed
