"""pcapng files built byte by byte (draft-ietf-opsawg-pcapng), in either byte order: section headers, interface
descriptions with timestamp resolution and offset options, enhanced, simple and obsolete packet blocks, and
blocks the reader must step over. For the reader's tests; tcpdump's own pcapng files are in the system tests."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def block(kind: int, body: bytes, order: str = "<") -> bytes:
    body = _pad(body)
    length = 12 + len(body)
    return struct.pack(order + "II", kind, length) + body + struct.pack(order + "I", length)


def option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + _pad(value)


def options(opts: list[bytes], order: str = "<") -> bytes:
    return b"".join(opts) + struct.pack(order + "HH", 0, 0) if opts else b""


def shb(order: str = "<", version: tuple[int, int] = (1, 0), opts: list[bytes] | None = None) -> bytes:
    body = struct.pack(order + "IHHq", 0x1A2B3C4D, *version, -1) + options(opts or [], order)
    return block(0x0A0D0D0A, body, order)


def idb(linktype: int = 1, snaplen: int = 262144, order: str = "<", tsresol: int | None = None,
        tsoffset: int | None = None) -> bytes:
    opts = []
    if tsresol is not None:
        opts.append(option(9, bytes([tsresol]), order))
    if tsoffset is not None:
        opts.append(option(14, struct.pack(order + "q", tsoffset), order))
    return block(1, struct.pack(order + "HHI", linktype, 0, snaplen) + options(opts, order), order)


def epb(iface: int, units: int, data: bytes, order: str = "<", orig_len: int | None = None) -> bytes:
    head = struct.pack(order + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(data),
                       len(data) if orig_len is None else orig_len)
    return block(6, head + data, order)


def spb(data: bytes, order: str = "<") -> bytes:
    return block(3, struct.pack(order + "I", len(data)) + data, order)


def obsolete_pb(iface: int, units: int, data: bytes, order: str = "<") -> bytes:
    head = struct.pack(order + "HHIIII", iface, 0, units >> 32, units & 0xFFFFFFFF, len(data), len(data))
    return block(2, head + data, order)


def statistics(iface: int = 0, order: str = "<") -> bytes:
    return block(5, struct.pack(order + "III", iface, 0, 0), order)  # an Interface Statistics Block


def pcap_to_pcapng(src: Path, dst: Path) -> str:
    """The packets of a pcap file as pcapng: by Wireshark's editcap when it is installed, else written here (one
    section, one Ethernet interface, an enhanced packet block per record). Returns which wrote it."""
    if shutil.which("editcap"):
        subprocess.run(["editcap", "-F", "pcapng", str(src), str(dst)], check=True, capture_output=True)
        return "editcap"
    from opentap.pcap.pcapfile import iter_packets  # the tests' support may use the package; the package not this

    with open(dst, "wb", buffering=1 << 20) as f:
        f.write(shb() + idb(1, tsresol=9))
        for ts, wire, _linktype, data in iter_packets([src]):
            f.write(epb(0, ts, data, orig_len=wire))
    return "tests/support/pcapngbytes.py"
