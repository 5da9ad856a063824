"""What we write and merge, read by tcpdump itself: it must count every record and complain about nothing (the
reader's own checks on the same kind of files: tests/unit/test_pcapfile.py)."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from opentap.pcap.pcapfile import stream_merged

from ..support.pcapbytes import frame, make_records, pcap_file

TCPDUMP = shutil.which("tcpdump") or ("/usr/sbin/tcpdump" if Path("/usr/sbin/tcpdump").exists() else None)
pytestmark = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed: cannot cross-check with it")


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def tcpdump_count(path: Path) -> int:
    """Packets tcpdump itself reads from a file; it must not complain about the file either."""
    assert TCPDUMP is not None
    done = subprocess.run([TCPDUMP, "-r", str(path), "-nn"], capture_output=True, text=True, check=True)
    assert "truncated" not in done.stderr and "bogus" not in done.stderr, done.stderr
    # One line per packet; unknown EtherTypes add indented hex-dump lines, not counted.
    return sum(1 for line in done.stdout.splitlines() if line and not line[0].isspace())


def test_merge_readable_by_tcpdump(tmp_path: Path) -> None:
    chunks = [make_records(40, 0, nano=True), make_records(3, 40, nano=True), make_records(30, 43, nano=True)]
    paths = [write(tmp_path / f"c{i}.pcap", pcap_file(r, nano=True)) for i, r in enumerate(chunks)]
    paths[1].write_bytes(paths[1].read_bytes()[:-5])  # a partial record must not reach the stream
    merged = write(tmp_path / "merged.pcap", b"".join(stream_merged(paths, block=64)))
    assert tcpdump_count(merged) == 40 + 2 + 30
    assert tcpdump_count(paths[0]) == 40


def test_a_large_merged_stream_is_read_by_tcpdump(tmp_path: Path) -> None:
    """200k small records in three chunks, merged through odd-sized blocks (every block boundary case; the
    merge's own checks on such a stream are test_large_round_trip's): tcpdump reads every record."""
    rng = random.Random(7)
    records = [(1_700_000_000_000_000_000 + i * 1000, size, frame(i, size))
               for i, size in ((i, rng.randint(18, 120)) for i in range(200_000))]
    paths = [write(tmp_path / f"{n}.pcap", pcap_file(records[lo:hi]))
             for n, (lo, hi) in enumerate(((0, 70_000), (70_000, 140_000), (140_000, 200_000)))]
    merged = write(tmp_path / "merged.pcap", b"".join(stream_merged(paths, block=4093)))
    assert tcpdump_count(merged) == 200_000
