"""Tests for opentap.pcap.pcapfile, on pcap files built byte by byte (tests/support/pcapbytes.py). That tcpdump
reads what we merge: tests/system/test_pcap_read_by_tcpdump.py."""

from __future__ import annotations

import io
import random
import struct
from pathlib import Path

import pytest

from opentap.capture import tcpdump
from opentap.pcap.pcapfile import (
    EMPTY_HEADER,
    PcapError,
    PcapStats,
    count,
    iter_records,
    read_header,
    stream_merged,
    truncate_after,
)

from ..support.pcapbytes import Record, frame, make_records, pcap_file, pcap_header, pcap_record


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def parse(stream: bytes, tmp_path: Path) -> list[Record]:
    return list(iter_records([write(tmp_path / "merged.pcap", stream)]))


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_header_and_records_all_formats(tmp_path: Path, byteorder: str, nano: bool) -> None:
    records = make_records(25, nano=nano)
    path = write(tmp_path / "a.pcap", pcap_file(records, byteorder, nano, linktype=1))
    with path.open("rb") as f:
        header = read_header(f)
    assert header is not None
    assert header.byteorder == ("little" if byteorder == "<" else "big")
    assert header.nanosecond is nano
    assert (header.snaplen, header.linktype) == (262144, 1)
    assert header.raw == path.read_bytes()[:24]
    assert list(iter_records([path])) == records
    # A format must survive the merge verbatim, header included.
    assert b"".join(stream_merged([path])) == path.read_bytes()


def test_read_header_short_and_bad_magic() -> None:
    assert read_header(io.BytesIO(b"")) is None
    assert read_header(io.BytesIO(pcap_header()[:23])) is None
    with pytest.raises(PcapError, match="not a pcap"):
        read_header(io.BytesIO(b"\x00" * 24))
    with pytest.raises(PcapError, match="pcapng"):
        read_header(io.BytesIO(b"\x0a\x0d\x0d\x0a" + b"\x00" * 20))


def test_linktype_ignores_fcs_bits() -> None:
    header = read_header(io.BytesIO(pcap_header(linktype=0x1000_0001)))
    assert header is not None and header.linktype == 1


@pytest.mark.parametrize("cut", [1, 8, 15, 16, 17, 50])
def test_truncated_last_record_is_left_out(tmp_path: Path, cut: int) -> None:
    records = make_records(10)
    full = pcap_file(records)
    last_len = 16 + len(records[-1][2])
    assert cut < last_len
    path = write(tmp_path / "live.pcap", full[:-cut])
    assert list(iter_records([path])) == records[:-1]
    assert count([path]) == PcapStats(
        9, sum(len(d) for _, _, d in records[:-1]), sum(o for _, o, _ in records[:-1])
    )
    assert b"".join(stream_merged([path])) == full[: len(full) - last_len]


def test_partial_header_file_is_skipped(tmp_path: Path) -> None:
    records = make_records(5)
    empty = write(tmp_path / "0.pcap", b"")
    partial = write(tmp_path / "1.pcap", pcap_header()[:10])
    good = write(tmp_path / "2.pcap", pcap_file(records, ">", True))
    missing = tmp_path / "3.pcap"  # rotated away by tcpdump -W between listing and reading
    paths = [empty, partial, good, missing]
    assert list(iter_records(paths)) == records
    assert count(paths).packets == 5
    merged = b"".join(stream_merged(paths))
    assert merged == good.read_bytes()  # the header comes from the first file that has one


def test_no_header_anywhere_gives_valid_empty_pcap(tmp_path: Path) -> None:
    paths = [write(tmp_path / "0.pcap", b""), write(tmp_path / "1.pcap", b"\xd4\xc3")]
    merged = b"".join(stream_merged(paths))
    assert merged == EMPTY_HEADER
    header = read_header(io.BytesIO(merged))
    assert header is not None
    assert (header.byteorder, header.nanosecond) == ("little", False)
    assert (header.snaplen, header.linktype) == (262144, 1)
    assert b"".join(stream_merged([])) == EMPTY_HEADER
    assert count(paths) == PcapStats(0, 0, 0)


def test_merge_three_chunks(tmp_path: Path) -> None:
    chunks = [make_records(40, 0), make_records(1, 40), make_records(30, 41)]
    paths = [write(tmp_path / f"c{i}.pcap", pcap_file(r)) for i, r in enumerate(chunks)]
    # The last chunk is still being written: its final record is cut in its header.
    paths[2].write_bytes(paths[2].read_bytes() + pcap_record(1, b"x" * 100)[:9])
    expected = chunks[0] + chunks[1] + chunks[2]
    for block in (1, 17, 100, 4096, 1 << 20):
        merged = b"".join(stream_merged(paths, block=block))
        assert merged.startswith(paths[0].read_bytes()[:24])
        assert parse(merged, tmp_path) == expected
    assert list(iter_records(paths)) == expected
    for block in (1, 17, 100, 4096, 1 << 20):  # small blocks: records span them and get seeked over
        assert count(paths, block=block) == PcapStats(
            len(expected), sum(len(d) for _, _, d in expected), sum(o for _, o, _ in expected)
        )


def test_linktype_mismatch(tmp_path: Path) -> None:
    a = write(tmp_path / "a.pcap", pcap_file(make_records(2), linktype=1))
    b = write(tmp_path / "b.pcap", pcap_file(make_records(2), linktype=113))
    stream = stream_merged([a, b])
    with pytest.raises(PcapError, match=r"b\.pcap.*linktype 113"):
        next(stream)  # checked before the first byte is produced


def test_format_mismatch(tmp_path: Path) -> None:
    a = write(tmp_path / "a.pcap", pcap_file(make_records(2)))
    b = write(tmp_path / "b.pcap", pcap_file(make_records(2), nano=True))
    with pytest.raises(PcapError, match="precision"):
        b"".join(stream_merged([a, b]))


def test_corrupt_record_names_the_file(tmp_path: Path) -> None:
    good = pcap_file(make_records(3))
    bad = good + struct.pack("<IIII", 1, 0, 262145, 262145) + b"\x00" * 64
    path = write(tmp_path / "corrupt.pcap", bad)
    with pytest.raises(PcapError, match=r"corrupt\.pcap.*caplen 262145"):
        list(iter_records([path]))
    with pytest.raises(PcapError, match=r"corrupt\.pcap"):
        count([path])
    with pytest.raises(PcapError, match=r"corrupt\.pcap"):
        b"".join(stream_merged([path]))
    bad_magic = write(tmp_path / "junk.pcap", b"\x01" * 40)
    with pytest.raises(PcapError, match=r"junk\.pcap"):
        list(iter_records([bad_magic]))


def test_count(tmp_path: Path) -> None:
    records = [(1_000, 1514, b"a" * 96), (2_000, 60, b"b" * 60), (3_000, 9000, b"c" * 0)]
    paths = [
        write(tmp_path / "a.pcap", pcap_file(records[:2], ">")),
        write(tmp_path / "b.pcap", pcap_file(records[2:], nano=True)),
    ]
    assert count(paths) == PcapStats(packets=3, captured_bytes=156, wire_bytes=10574)
    assert [r[1] for r in iter_records(paths)] == [1514, 60, 9000]


def test_large_round_trip(tmp_path: Path) -> None:
    """200k small packets through small odd-sized blocks: every block boundary case is hit."""
    rng = random.Random(7)
    header = pcap_header()
    parts = [header]
    for i in range(200_000):
        parts.append(pcap_record(1_700_000_000_000_000_000 + i * 1000, frame(i, rng.randint(18, 120))))
    full = b"".join(parts)
    split = [24 + sum(map(len, parts[1:70_001])), 24 + sum(map(len, parts[1:140_001]))]
    paths = [
        write(tmp_path / "0.pcap", full[: split[0]]),
        write(tmp_path / "1.pcap", header + full[split[0] : split[1]]),
        write(tmp_path / "2.pcap", header + full[split[1] :] + b"\x01\x02\x03"),  # + partial record header
    ]
    assert b"".join(stream_merged(paths, block=4093)) == full
    assert b"".join(stream_merged(paths)) == full
    assert count(paths).packets == 200_000
    seen = 0
    for i, (ts, orig, data) in enumerate(iter_records(paths)):
        assert ts == 1_700_000_000_000_000_000 + i * 1000 and orig == len(data)
        assert data[14:18] == struct.pack(">I", i)
        seen += 1
    assert seen == 200_000



def test_pinned_chunks_survive_publishing(tmp_path: Path) -> None:
    """A chunk renamed (published) while a download streams earlier chunks is still read, not skipped."""
    records = make_records(6)
    write(tmp_path / "packets-001-000000.pcap", pcap_file(records[:3]))
    write(tmp_path / ".seg001.pcap1", pcap_file(records[3:]))
    with tcpdump.pinned_chunks(tmp_path) as paths:
        stream = stream_merged(paths)
        first = next(stream)
        tcpdump.publish_closed(tmp_path, keep_last=False)  # what the engine does when tcpdump closes it
        merged = first + b"".join(stream)
    assert parse(merged, tmp_path) == records
    assert sorted(p.name for p in tmp_path.glob("packets-*")) == ["packets-001-000000.pcap",
                                                                  "packets-001-000001.pcap"]


def test_truncate_after_cuts_at_the_first_later_record(tmp_path: Path) -> None:
    records = make_records(10)
    first = write(tmp_path / "a.pcap", pcap_file(records[:6]))
    second = write(tmp_path / "b.pcap", pcap_file(records[6:]))
    cut_ts = records[3][0]  # keep records 0..3
    assert truncate_after([first, second], cut_ts) == 6
    assert list(iter_records([first, second])) == records[:4]
    assert truncate_after([first, second], cut_ts) == 0  # idempotent
