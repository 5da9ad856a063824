"""pcap files built byte by byte, in every format the reader must take (either byte order, micro- or nanosecond
stamps, any linktype), with numbered frames whose records are all different."""

from __future__ import annotations

import struct

Record = tuple[int, int, bytes]  # (timestamp_ns, orig_len, data)


def pcap_header(byteorder: str = "<", nano: bool = False, snaplen: int = 262144, linktype: int = 1) -> bytes:
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    return struct.pack(byteorder + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(
    ts_ns: int, data: bytes, orig_len: int | None = None, byteorder: str = "<", nano: bool = False
) -> bytes:
    sec, ns = divmod(ts_ns, 1_000_000_000)
    frac = ns if nano else ns // 1000
    orig = len(data) if orig_len is None else orig_len
    return struct.pack(byteorder + "IIII", sec, frac, len(data), orig) + data


def pcap_file(records: list[Record], byteorder: str = "<", nano: bool = False, linktype: int = 1) -> bytes:
    body = b"".join(pcap_record(ts, data, orig, byteorder, nano) for ts, orig, data in records)
    return pcap_header(byteorder, nano, linktype=linktype) + body


def frame(i: int, size: int = 60) -> bytes:
    """A minimal Ethernet frame (broadcast, EtherType 0x88b5 local experimental), numbered i."""
    head = b"\xff" * 6 + bytes([2, 0, 0, 0, 0, i % 256]) + b"\x88\xb5" + struct.pack(">I", i)
    return (head + bytes(range(256)) * (size // 256 + 1))[:size]


def make_records(n: int, start: int = 0, nano: bool = False) -> list[Record]:
    """Records with distinct sizes and timestamps; microsecond files can only hold whole µs."""
    out = []
    for i in range(start, start + n):
        ts = 1_700_000_000_000_000_000 + i * 1_234_000 + (i % 1000 if nano else 0)
        data = frame(i, 42 + (i * 37) % 300)
        out.append((ts, len(data) + i % 3 * 100, data))
    return out
