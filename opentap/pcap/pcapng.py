"""Reading pcapng files (the pcapng IETF draft, draft-ietf-opsawg-pcapng): sections, interfaces, packets.

The block walk is C (`_native.scan_pcapng`: enhanced, simple and obsolete packet blocks become packet
descriptors, other blocks are stepped over); it stops at every section header and interface description,
which are read here: a section sets the byte order and starts a new list of interfaces, an interface brings
its link type, snaplen and timestamp resolution and offset. Both byte orders, any number of sections and
interfaces. Files are untrusted: every length is checked before it is used, and an option that runs past
its block makes the file damaged, as libpcap says too.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from opentap._native import IFACE_SIZE, scan_pcapng

MAGIC = 0x0A0D0D0A
BYTE_ORDER_MAGIC = 0x1A2B3C4D
IDB = 1
MAX_BLOCK = 1 << 24  # libpcap's own limit on a block's length (16 MiB)
STOP_END, STOP_META, STOP_BAD = 0, 1, 2
BAD = {1: "a block length that is not a multiple of 4, below 12 or over 16 MiB",
       2: "a block whose trailing length differs from its leading one",
       3: "a packet of an interface that no interface block described",
       4: "a packet longer than its block", 5: "a section header without the byte-order magic"}
IFACE = struct.Struct("=qIIBB6x")  # csrc/scan.h fm_ng_iface
OPT_TSRESOL, OPT_TSOFFSET = 9, 14
assert IFACE.size == IFACE_SIZE, "IFACE is out of step with csrc/scan.h"


class PcapngError(ValueError):
    """Not a pcapng file we can read, or a damaged one."""


def _options(body: memoryview, order: str, at: int) -> dict[int, bytes]:
    """The options from body[at:] (code, length, value padded to 4 bytes), up to opt_endofopt."""
    out: dict[int, bytes] = {}
    while at + 4 <= len(body):
        code, length = struct.unpack_from(order + "HH", body, at)
        if code == 0:
            break
        value_end = at + 4 + length
        if value_end > len(body):
            raise PcapngError(f"option {code} is {length} bytes long, past the end of its block")
        out.setdefault(code, bytes(body[at + 4 : value_end]))
        at += 4 + (length + 3) // 4 * 4
    return out


class Scanner:
    """One pcapng file's state while it is read: byte order and the current section's interfaces."""

    min_record = 12  # a block's type and length (and a section header's byte-order magic)

    def __init__(self) -> None:
        self.order = "<"
        self.ifaces: list[tuple[int, int]] = []  # (link type, snaplen) per interface
        self._packed = b""
        self.last_ts = 0

    @property
    def linktypes(self) -> tuple[int, ...]:
        return tuple(lt for lt, _snap in self.ifaces)

    @staticmethod
    def sniff(head: bytes) -> bool:
        return len(head) >= 4 and struct.unpack_from("<I", head)[0] == MAGIC

    def start(self, f: BinaryIO) -> int | None:
        """Read the first section header; the offset after it, or None if the file is too short yet."""
        head = f.read(12)
        if len(head) < 12:
            return None
        length = self._section_order(head)
        if length > MAX_BLOCK:
            raise PcapngError(f"a section header of {length} bytes")
        block = head + f.read(length - 12)
        if len(block) < length:
            return None
        return self.meta(memoryview(block))

    def _section_order(self, head: bytes | memoryview) -> int:
        (bom,) = struct.unpack_from("<I", head, 8)
        if bom == BYTE_ORDER_MAGIC:
            self.order = "<"
        elif bom == 0x4D3C2B1A:
            self.order = ">"
        else:
            raise PcapngError(f"a section header without the byte-order magic (0x{bom:08x})")
        (length,) = struct.unpack_from(self.order + "I", head, 4)
        if length < 28 or length % 4:
            raise PcapngError(f"a section header of {length} bytes")
        return length

    def meta(self, data: memoryview) -> int:
        """Read the section header or interface description at data[0]; return its length."""
        (kind,) = struct.unpack_from("<I", data)
        if kind == MAGIC:
            length = self._section_order(data)
            major, minor = struct.unpack_from(self.order + "HH", data, 12)
            if major != 1 or minor not in (0, 2):  # 1.2 was written by some tools; libpcap reads both
                raise PcapngError(f"pcapng version {major}.{minor} is not supported (only 1.0)")
            _options(data[:length - 4], self.order, 24)
            self.ifaces, self._packed, self.last_ts = [], b"", 0
            return length
        kind, length = struct.unpack_from(self.order + "II", data)
        assert kind == IDB
        if length < 20:
            raise PcapngError(f"an interface description of {length} bytes")
        linktype, _reserved, snaplen = struct.unpack_from(self.order + "HHI", data, 8)
        opts = _options(data[:length - 4], self.order, 16)
        binary, exponent = False, 6  # microseconds unless the interface says otherwise
        if (r := opts.get(OPT_TSRESOL)) is not None and len(r) >= 1:
            binary, exponent = bool(r[0] & 0x80), r[0] & 0x7F
            if exponent > (63 if binary else 18):  # finer than 1e-18 s or 2^-63 s: no real clock
                raise PcapngError(f"interface {len(self.ifaces)}: timestamp resolution {r[0]:#04x} is out of range")
        offset = 0
        if (o := opts.get(OPT_TSOFFSET)) is not None and len(o) >= 8:
            (offset,) = struct.unpack_from(self.order + "q", o)
            offset = max(-(1 << 33), min(offset, 1 << 33)) * 1_000_000_000  # seconds; clamped to ~270 years
        self.ifaces.append((linktype, snaplen))
        self._packed += IFACE.pack(offset, linktype, snaplen, binary, exponent)
        return length

    def scan(self, view: memoryview | bytes | bytearray) -> tuple[bytes, int, int, int, int, int, int]:
        descs, end, need, stop, bad, captured, wire, self.last_ts = scan_pcapng(
            view, self.order == ">", self._packed, MAX_BLOCK, self.last_ts)
        return descs, end, need, stop, bad, captured, wire

    def damage(self, bad: int) -> str:
        return BAD.get(bad, "a damaged block")
