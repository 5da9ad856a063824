"""The ring's recorder (opentap.capture.ringrecorder) on a real veth: a packet is in its file within the ring's
FLUSH_LAG of its timestamp even when it is the only one (what replaced tcpdump -U must keep), blocks rotate at
their size (at most one record past it) and reuse their names as tcpdump -W does, with the device's file mode,
the filter is applied, files are written as the capture user, SIGUSR1 tells the kernel's drops in tcpdump's
words, SIGTERM ends it with everything it was handed written, and a bad filter or interface, or a full disk,
is an error, not a silent recorder."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from opentap.capture.ring import FLUSH_LAG
from opentap.capture.ringdrops import DROPPED_RE
from opentap.pcap import pcapfile

from ..support.netns import B_IP

pytestmark = pytest.mark.root
PORT = 5311
BPF = f"udp and dst port {PORT}"


def start(iface: str, out: Path, *extra: str, block_mb: int = 1, files: int = 3) -> tuple[subprocess.Popen, Path]:
    log = out.parent / "recorder.log"
    with open(log, "ab") as err:
        proc = subprocess.Popen([sys.executable, "-m", "opentap.capture.ringrecorder", "--interface", iface,
                                 "--out", str(out), "--block-mb", str(block_mb), "--files", str(files),
                                 "--buffer-kib", "4096", "--snaplen", "262144", "--mode", "640", *extra],
                                stderr=err)
    deadline = time.monotonic() + 10
    while "listening on" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)
    return proc, log


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=5)


def udp_payloads(paths: list[Path]) -> list[tuple[int, int]]:
    """(timestamp ns, payload length) of every UDP datagram to PORT in the files (Ethernet, IPv4 of 20 bytes)."""
    out = []
    for ts, _wire, data in pcapfile.iter_records(paths):
        if len(data) >= 42 and struct.unpack_from("!H", data, 36)[0] == PORT:
            out.append((ts, len(data) - 42))
    return out


def test_a_lone_packet_is_in_the_file_within_flush_lag(lan, tmp_path: Path) -> None:
    proc, _log = start(lan.ha, tmp_path / ".run-000001.pcap", f"--filter={BPF}")
    try:
        for k in range(4):  # one datagram at a time, the link otherwise idle: nothing fills the stdio buffer
            lan.run(lan.ns_a, "udp", B_IP, PORT, 1, 100 + k)
            deadline = time.monotonic() + FLUSH_LAG + 1
            while not (found := [p for p in udp_payloads(list(tmp_path.glob(".run-*"))) if p[1] == 100 + k]):
                assert time.monotonic() < deadline, f"datagram {k} not written"
                time.sleep(0.05)
            # it reached the file less than FLUSH_LAG after its timestamp: ring.flushed_through() holds
            assert time.time() - found[0][0] / 1e9 < FLUSH_LAG, (k, time.time() - found[0][0] / 1e9)
    finally:
        assert stop(proc) == 0


def test_blocks_rotate_at_their_size_and_reuse_names(lan, tmp_path: Path) -> None:
    proc, log = start(lan.ha, tmp_path / ".run-000001.pcap", f"--filter={BPF}", block_mb=1, files=3)
    first = (tmp_path / ".run-000001.pcap0").stat().st_ino
    try:
        lan.run(lan.ns_a, "udp", B_IP, PORT, 30000, 200, timeout=60)  # ~7.4 MB: the three names go round twice
        lan.run(lan.ns_a, "udp", B_IP, PORT, 1, 999)  # the last one, to be found after the stop
        time.sleep(FLUSH_LAG)
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 3
        while not DROPPED_RE.search(log.read_text()):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        assert stop(proc) == 0
    files = sorted(tmp_path.glob(".run-*"))
    assert [p.name for p in files] == [".run-000001.pcap0", ".run-000001.pcap1", ".run-000001.pcap2"]
    assert (tmp_path / ".run-000001.pcap0").stat().st_ino == first  # reused in place, as tcpdump's fopen(w)
    record = 16 + 14 + 20 + 8 + 200
    for p in files:
        assert os.stat(p).st_mode & 0o777 == 0o640
        assert pcapfile.count([p]).packets > 0  # every block is a whole, readable pcap
    closed = [p for p in files if udp_payloads([p])[-1][1] != 999]
    assert len(closed) == 2
    for p in closed:  # rotated once past 1,000,000 bytes, by at most one record
        assert 1_000_000 < p.stat().st_size <= 1_000_000 + record, p.stat().st_size
    in_time = sorted(files, key=lambda p: udp_payloads([p])[0][0])
    assert in_time[-1] not in closed  # the one written last holds the newest
    stamps = [ts for ts, _n in udp_payloads(in_time)]
    assert stamps == sorted(stamps) and udp_payloads(in_time)[-1][1] == 999
    assert len(stamps) > 2 * 1_000_000 // record  # the newest blocks' datagrams, all of them whole


def test_a_stop_writes_everything_and_counts_are_told(lan, tmp_path: Path) -> None:
    proc, log = start(lan.ha, tmp_path / ".run-000002.pcap", f"--filter={BPF}", block_mb=64, files=8)
    try:
        lan.run(lan.ns_a, "udp", B_IP, PORT, 2000, 64)
        lan.run(lan.ns_a, "udp", B_IP, PORT + 1, 50, 64)  # not matched by the filter
        time.sleep(FLUSH_LAG)  # libpcap's block timeout: what the kernel holds is handed over
    finally:
        assert stop(proc) == 0
    assert [n for _ts, n in udp_payloads(list(tmp_path.glob(".run-*")))] == [64] * 2000
    assert pcapfile.count(list(tmp_path.glob(".run-*"))).packets == 2000  # the filter kept the others out
    counts = DROPPED_RE.findall(log.read_text())
    assert counts and counts[-1] == "0"


@pytest.mark.parametrize("extra", [["--filter=udp and port nonsense"], ["--interface", "ot18-nosuchif"]])
def test_bad_filter_or_interface_fails(lan, tmp_path: Path, extra: list[str]) -> None:
    argv = [sys.executable, "-m", "opentap.capture.ringrecorder", "--interface", lan.ha, "--out",
            str(tmp_path / ".run-000001.pcap"), "--block-mb", "1", "--files", "2", "--buffer-kib", "1024",
            "--snaplen", "262144", *extra]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    assert done.returncode == 1 and "ringrecorder:" in done.stderr and "listening on" not in done.stderr
    assert not list(tmp_path.glob(".run-*"))


def test_a_full_disk_ends_it_with_the_error(lan, tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "ot18-small", str(small)], check=True)
    try:
        proc, log = start(lan.ha, small / ".run-000001.pcap", f"--filter={BPF}", block_mb=1, files=8)
        try:
            lan.run(lan.ns_a, "udp", B_IP, PORT, 8000, 200, timeout=60)  # ~1.9 MB into 1 MiB
            assert proc.wait(timeout=10) == 1  # not a recorder that goes on writing nothing
        finally:
            if proc.poll() is None:
                stop(proc)
        assert "ringrecorder: writing" in log.read_text() and "No space left" in log.read_text()
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_it_writes_as_the_capture_user(lan) -> None:
    nobody = pwd.getpwnam("nobody")
    out = Path(tempfile.mkdtemp(prefix="opentap-ringrec-"))  # pytest's own directories are root's alone
    try:
        os.chown(out, nobody.pw_uid, nobody.pw_gid)  # as a ring's directory is for capture_user
        proc, _log = start(lan.ha, out / ".run-000001.pcap", f"--filter={BPF}", "--user", "nobody")
        try:
            assert os.stat(f"/proc/{proc.pid}").st_uid == nobody.pw_uid  # root only to open the interface
            lan.run(lan.ns_a, "udp", B_IP, PORT, 10, 64)
            time.sleep(FLUSH_LAG)
        finally:
            assert stop(proc) == 0
        block = out / ".run-000001.pcap0"
        assert block.stat().st_uid == nobody.pw_uid and len(udp_payloads([block])) == 10
    finally:
        shutil.rmtree(out, ignore_errors=True)
