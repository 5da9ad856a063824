"""`opentap flows` offline: every input checked before anything is written, no partial output file ever, a record
cut off at the end of a file said out loud, pcapng and other link types read, refused link types named."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from opentap.cli.main import main

from ..support import frames as fr
from ..support import pcapngbytes as ng

A, B = "198.18.0.1", "198.18.0.2"


def good_pcap(path: Path, n: int = 5) -> Path:
    fr.write_pcap(path, [(1_700_000_000 + i, fr.eth(fr.ipv4(A, B, fr.UDP, fr.udp(A, B, 7, 9, b"x" * i))))
                         for i in range(n)])
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = main(["flows", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_a_file_too_short_to_be_a_capture_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    out = tmp_path / "out.csv"
    rc, _, err = run(capsys, str(text), "-o", str(out))
    assert rc == 2 and "notes.txt: too short to be a pcap or pcapng file (6 bytes)" in err
    assert not out.exists() and list(tmp_path.iterdir()) == [text]


def test_a_bad_second_file_leaves_no_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = good_pcap(tmp_path / "a.pcap")
    second = tmp_path / "b.pcap"
    second.write_bytes(good_pcap(tmp_path / "c.pcap").read_bytes() + struct.pack("<IIII", 1, 0, 1 << 30, 60))
    out = tmp_path / "flows.csv"
    out.write_text("an older result\n")
    rc, _, err = run(capsys, str(first), str(second), "-o", str(out))
    assert rc == 2 and "b.pcap: corrupt record" in err
    assert out.read_text() == "an older result\n"  # untouched, and no hidden leftover beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pcap", "b.pcap", "c.pcap", "flows.csv"]


def test_a_refused_link_type_is_named_before_anything_is_written(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    radio = tmp_path / "wifi.pcap"
    with radio.open("wb") as f:
        fr.PcapWriter(f, linktype=127).write(1.0, b"\x00" * 40)
    rc, out, err = run(capsys, str(good_pcap(tmp_path / "a.pcap")), str(radio))
    assert rc == 2 and "IEEE802_11_RADIOTAP (127) cannot be metered" in err and out == ""


def test_a_record_cut_off_at_the_end_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = good_pcap(tmp_path / "a.pcap")
    path.write_bytes(path.read_bytes()[:-10])
    out = tmp_path / "out.csv"
    rc, _, err = run(capsys, str(path), "-o", str(out))
    assert rc == 0 and "a.pcap: the file ends 66 bytes into a record; that record is left out" in err
    assert "4 packets" in err and out.read_text().splitlines()[-1].startswith("1,")


def test_pcapng_and_raw_ip_are_metered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "a.pcapng"
    packet = fr.ipv4(A, B, fr.UDP, fr.udp(A, B, 7, 9, b"y"))
    path.write_bytes(ng.shb() + ng.idb(101) + ng.epb(0, 1_700_000_000 * 10**6, packet))
    rc, out, err = run(capsys, str(path))
    assert rc == 0 and "1 packets (1 IP" in err
    assert out.splitlines()[1].split(",")[3:13] == [A, B, "7", "9", "UDP", "........", "0", "0", "1", "29"]
