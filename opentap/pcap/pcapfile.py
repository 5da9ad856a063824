"""Streaming reader for capture files: classic libpcap files, as written by ``tcpdump -w FILE -C SIZE``, and,
for reading packets (the meter, per-packet CSV), pcapng files (pcapng.py).

Capture chunks can be gigabytes and the newest one is normally still being written, so everything
here reads in bounded blocks, and a record cut short at the end of a file is treated as "not
written yet" (left out) rather than as corruption; readers that want to hear of it pass a list (`cut`).
Merging, counting and cutting chunks (the device's retrieve paths) take pcap only: tcpdump writes pcap.
The C scan (``_native.scan_pcap``, ``scan_pcapng``) turns a block of file data into packet descriptors
(DESC): time, where the packet is in the block, its lengths and link type.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

from opentap._native import DESC_SIZE, scan_pcap

from .pcapng import PcapngError, Scanner
from .readahead import PIECE, SLACK, Buffers, run_ahead

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
DESC = struct.Struct("=qIIIHH")  # csrc/flow.h fm_desc: ts_ns, offset, caplen, wirelen, linktype, interface
assert DESC.size == DESC_SIZE, "DESC is out of step with csrc/flow.h"
STOP_END, STOP_META, STOP_BAD = 0, 1, 2

# What a capture with no packets yet looks like: Ethernet, snaplen 262144, microseconds, v2.4.
EMPTY_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, MAX_CAPLEN, 1)


class PcapError(ValueError):
    """A capture file is malformed (bad magic, impossible record length) or chunks don't match."""


class PcapHeader(NamedTuple):  # (NamedTuples, not dataclasses: `opentap flows` starts faster without them)
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


class Damage(NamedTuple):
    """Where a file stops making sense: the records before `offset` are good, nothing after it is read."""

    path: Path
    offset: int
    what: str

    def __str__(self) -> str:
        return f"{self.path.name} is damaged at byte {self.offset} ({self.what}): its data ends at the last " \
               "good record before it"


class PcapStats(NamedTuple):
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
        kind = "pcapng, not pcap" if magic == _PCAPNG_MAGIC else "not a pcap file"
        raise PcapError(f"{kind}: magic 0x{magic:08x}")
    byteorder, nanosecond = _MAGICS[magic]
    order = "<" if byteorder == "little" else ">"
    major, minor = struct.unpack_from(order + "HH", raw, 4)
    if (major, minor) not in ((2, 0), (2, 1), (2, 2), (2, 3), (2, 4)):  # libpcap's rule (bar DG/UX's 543.0)
        raise PcapError(f"pcap version {major}.{minor} is not supported (only 2.0 to 2.4)")
    snaplen, network = struct.unpack_from(order + "II", raw, 16)
    if network & 0x03FF0000:  # between the link type and the FCS bits: reserved, zero (libpcap refuses it too)
        raise PcapError(f"the link type field 0x{network:08x} has reserved bits set")
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


class _PcapScan:
    """A pcap file's records, for the block loop below (pcapng.Scanner is the pcapng one)."""

    min_record = RECORD_HEADER_LEN

    def __init__(self, header: PcapHeader) -> None:
        self.header = header
        self.linktypes = (header.linktype,)
        self._args = (header.byteorder == "big", header.nanosecond, header.linktype, header.max_caplen)

    def scan(self, view: memoryview | bytes | bytearray) -> tuple[bytes, int, int, int, int, int, int]:
        descs, end, need, bad, captured, wire = scan_pcap(view, *self._args)
        return descs, end, need, STOP_BAD if bad else STOP_END, bad, captured, wire

    def meta(self, _data: memoryview) -> int:
        raise AssertionError("pcap has no metadata blocks")

    def damage(self, bad: int) -> str:
        return f"a record claims {bad} bytes, over the limit of {self.header.max_caplen}"


class Block(NamedTuple):
    """``buf[:end]``: a run of whole records or blocks; ``descs`` describes their packets (DESC entries, offsets
    into buf), whose caplen and orig_len add up to ``captured`` and ``wire``; ``linktypes`` are the link types
    of the file's interfaces (one for pcap); ``next_offset`` is the file offset just past ``end``."""

    buf: bytes | bytearray | memoryview
    end: int
    descs: bytes
    captured: int
    wire: int
    linktypes: tuple[int, ...] = ()
    next_offset: int = 0

    @property
    def packets(self) -> int:
        return len(self.descs) // DESC_SIZE


def _scan(path: Path, scanner: _PcapScan | Scanner, data: bytes | memoryview, base: int,
          damage: list[Damage] | None) -> Iterator[Block]:
    """The whole records of data (file offset base): yields them, returns (bytes used, bytes the record after
    them still lacks, whether damage ended the file)."""
    pos = missing = 0
    what = ""
    while True:  # pcapng: scanning resumes after each section or interface block, read in Python
        view = data if pos == 0 else memoryview(data)[pos:]
        descs, end, missing, stop, bad, captured, wire = scanner.scan(view)
        if end:
            yield Block(view, end, descs, captured, wire, scanner.linktypes, base + pos + end)
        pos += end
        if stop == STOP_META:
            try:
                pos += scanner.meta(memoryview(data)[pos:])
            except PcapngError as e:
                bad, stop, what = 0, STOP_BAD, str(e)
            else:
                continue
        if stop == STOP_BAD:
            what = scanner.damage(bad) if bad else what
            if damage is None:
                if isinstance(scanner, _PcapScan):
                    raise PcapError(f"{path}: corrupt record at offset {base + pos}: caplen {bad} > "
                                    f"{scanner.header.max_caplen}")
                raise PcapError(f"{path}: damaged at byte {base + pos}: {what}")
            damage.append(Damage(path, base + pos, what))
            return pos, missing, True
        return pos, missing, False


def _blocks(
    path: Path, f: BinaryIO, scanner: _PcapScan | Scanner, size: int, block: int, start: int,
    damage: list[Damage] | None = None, cut: list[Damage] | None = None, ahead: bool = False,
) -> Iterator[Block]:
    """The file's whole records from ``start``, a block at a time, in file order.

    A record cut by the end of a block is read again at the start of the next one (cheaper than copying a
    carry-over in front of every block), so memory stays near one block plus one record. Reading stops at the
    size seen when the file was opened: a live file must not be chased forever, and whatever partial record
    sits at that point is left out (and added to ``cut``, when given). ahead: read on a second thread (readahead.py),
    into a few reused buffers, while the caller works on the last block; each Block is then only good until the
    next one is asked for.

    A record that cannot be right (a caplen beyond any snaplen, a pcapng block length that breaks the rules: we
    are no longer at a record boundary) raises PcapError, or, when a damage list is given, ends this file's data
    at the last good record and is added to the list: one damaged record must not make a whole capture
    unreadable.
    """
    if ahead:
        yield from _blocks_ahead(path, f, scanner, size, start, damage, cut)
        return
    base = start  # file offset of the next read
    need = 0  # the size of the record cut by the last block's end, if its header was whole
    while base < size:
        f.seek(base)
        want = min(max(block, need), size - base)
        data = f.read(want)
        pos, missing, damaged = yield from _scan(path, scanner, data, base, damage)
        if damaged:
            return
        if not pos and (len(data) < want or base + len(data) >= size):
            if cut is not None:
                cut.append(Damage(path, base, f"the file ends {size - base} bytes into a record"))
            break  # the file ends inside a record (or shrank under us)
        need = max(len(data) - pos + missing, scanner.min_record)  # a record longer than a block: read more
        base += pos


def _blocks_ahead(path: Path, f: BinaryIO, scanner: _PcapScan | Scanner, size: int, start: int,
                  damage: list[Damage] | None, cut: list[Damage] | None) -> Iterator[Block]:
    """_blocks with the file read and scanned on another thread (readahead.py) in consecutive pieces; the partial
    record at the end of a piece is carried in front of the next one (into the buffer's slack: the piece itself is
    not copied)."""

    def produce(buffers: Buffers) -> Iterator[tuple[Block, bytearray]]:
        base, tail = start, b""  # base: file offset of the data scanned next; tail: the record the last piece cut
        f.seek(start)
        left = size - start  # not past the size seen at open: a live file is not chased
        while left > 0 and (buf := buffers.take()) is not None:
            n = f.readinto(memoryview(buf)[SLACK : SLACK + min(PIECE, left)]) or 0
            if not n:
                break  # the file shrank
            left -= n
            if len(tail) <= SLACK:
                buf[SLACK - len(tail) : SLACK] = tail
                data: bytes | memoryview = memoryview(buf)[SLACK - len(tail) : SLACK + n]
            else:  # a record longer than the slack (a jumbo pcapng block): put it together
                data = tail + bytes(memoryview(buf)[SLACK : SLACK + n])
            scan = _scan(path, scanner, data, base, damage)
            while True:
                try:
                    yield next(scan), buf
                except StopIteration as done:
                    pos, _missing, damaged = done.value
                    break
            if damaged:
                return
            tail = bytes(data[pos:])
            base += pos
        if tail and cut is not None:
            cut.append(Damage(path, base, f"the file ends {len(tail)} bytes into a record"))

    yield from run_ahead(produce)


def open_any(path: Path, f: BinaryIO) -> tuple[_PcapScan | Scanner, int] | None:
    """The scanner for a pcap or pcapng file and the offset of its first record; None if the file is too short
    to say yet (a live chunk), PcapError if it is neither format."""
    head = f.read(4)
    f.seek(0)
    try:
        if Scanner.sniff(head):
            scanner = Scanner()
            start = scanner.start(f)
            return None if start is None else (scanner, start)
        header = read_header(f)
    except (PcapError, PcapngError) as e:
        raise PcapError(f"{path}: {e}") from None
    return None if header is None else (_PcapScan(header), HEADER_LEN)


def read_packets(path: Path, offset: int = 0, block: int = BLOCK, *, damage: list[Damage] | None = None,
                 cut: list[Damage] | None = None, ahead: bool = False) -> Iterator[Block]:
    """The packets of one pcap or pcapng file from `offset` (0 = the first record), a block at a time (see
    _blocks for damage, cut and ahead). For following a file that tcpdump is still writing: call again later with
    the last next_offset (pcap only: tcpdump writes pcap, and a pcapng file is read whole, from its start)."""
    try:
        f = path.open("rb", buffering=0)
    except FileNotFoundError:
        return
    with f:
        size = os.fstat(f.fileno()).st_size
        opened = open_any(path, f)
        if opened is None:
            return
        scanner, start = opened
        if offset > start and isinstance(scanner, Scanner):
            raise PcapError(f"{path}: a pcapng file is read whole, not followed from byte {offset}")
        yield from _blocks(path, f, scanner, size, block, max(offset, start), damage, cut, ahead)


def iter_packets(paths: Iterable[Path], damage: list[Damage] | None = None
                 ) -> Iterator[tuple[int, int, int, bytes]]:
    """Yield ``(timestamp_ns, orig_len, linktype, data)`` for every whole packet of each file (pcap or pcapng)."""
    for path in paths:
        for b in read_packets(path, damage=damage):
            buf = b.buf
            for ts, off, caplen, wire, linktype, _iface in DESC.iter_unpack(b.descs):
                yield ts, wire, linktype, bytes(buf[off : off + caplen])


def iter_records(paths: Iterable[Path], damage: list[Damage] | None = None) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(timestamp_ns, orig_len, data)`` for every whole record of each file, in order."""
    for ts, wire, _linktype, data in iter_packets(paths, damage):
        yield ts, wire, data


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
        for b in _blocks(path, f, _PcapScan(header), size, block, HEADER_LEN, damage=damage):
            yield bytes(b.buf[:b.end])


def count(paths: Iterable[Path], block: int = BLOCK, damage: list[Damage] | None = None) -> PcapStats:
    """Count whole records: the C walk adds up the record headers of each block."""
    packets = captured = wire = 0
    for path, f, header, size in _files(paths):
        for b in _blocks(path, f, _PcapScan(header), size, block, HEADER_LEN, damage=damage):
            packets, captured, wire = packets + b.packets, captured + b.captured, wire + b.wire
    return PcapStats(packets, captured, wire)


def truncate_after(paths: Sequence[Path], ts_ns: int) -> int:
    """Cut the files (in time order) back to the records stamped at or before ts_ns; return how many
    records went. Records of one interface come in time order, so everything from the first later record on
    is past the cut."""
    removed = 0
    for path, f, header, size in _files(paths):
        cut = None
        for b in _blocks(path, f, _PcapScan(header), size, BLOCK, HEADER_LEN):
            base = b.next_offset - b.end
            for ts, off, *_rest in DESC.iter_unpack(b.descs):
                if cut is None and ts > ts_ns:
                    cut = base + off - RECORD_HEADER_LEN
                if cut is not None:
                    removed += 1
        if cut is not None:
            os.truncate(path, cut)
    return removed
