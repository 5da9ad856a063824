"""tcpdump as a supervised child writing rotated pcap chunks, for the packet capture types (ethernet, netflow),
and what they read back from the chunks: totals, drops, damage, the merged stream.

tcpdump writes `.segNNN.pcap`, `.segNNN.pcap1`, ... (hidden); a chunk is closed once the next one exists, and
is then published as `packets-NNN-MMMMMM.pcap`. A segment is one tcpdump run: a capture resumed after a
daemon restart has more than one. Readers take the published chunks plus the open one (whole records only).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from opentap.capture import children, storage
from opentap.capture.storage import publish
from opentap.capture.types import Totals
from opentap.pcap import pcapfile

STOP_GRACE = 1.5  # seconds tcpdump runs past the window, so libpcap's last block reaches the file
_HIDDEN_RE = re.compile(r"^\.seg(\d{3})\.pcap(\d*)$")
_STAT_RE = re.compile(r"^(\d+) packets? (captured|received by filter|dropped by kernel|dropped by interface)")


class DriverError(RuntimeError):
    pass


def tcpdump_path() -> str:
    path = shutil.which("tcpdump") or shutil.which("tcpdump", path="/usr/sbin:/usr/bin")
    if not path:
        raise DriverError("tcpdump is not installed (apt-get install tcpdump)")
    return path


def _hidden_key(path: Path) -> tuple[int, int]:
    m = _HIDDEN_RE.match(path.name)
    assert m
    return int(m.group(1)), int(m.group(2) or 0)


def _hidden_chunks(directory: Path) -> list[Path]:
    return sorted((p for p in directory.iterdir() if _HIDDEN_RE.match(p.name)), key=_hidden_key)


def chunk_files(directory: Path) -> list[Path]:
    """Every pcap chunk of a capture in time order: published ones, then the one still being written."""
    if not directory.is_dir():
        return []
    published = sorted(directory.glob("packets-*.pcap"))
    return published + _hidden_chunks(directory)


def segment_chunks(directory: Path, segment: int) -> list[Path]:
    """The chunks written by one tcpdump run."""
    published = f"packets-{segment:03d}-"
    hidden = f".seg{segment:03d}.pcap"
    return [p for p in chunk_files(directory) if p.name.startswith((published, hidden))]


@contextlib.contextmanager
def pinned_chunks(directory: Path, tries: int = 5) -> Iterator[list[Path]]:
    """The chunks, opened now and named by /proc/self/fd paths, so a chunk published (renamed) while a
    long download is still streaming earlier chunks is read all the same, not skipped."""
    for _ in range(tries):
        fds: list[int] = []
        try:
            for path in chunk_files(directory):
                fds.append(os.open(path, os.O_RDONLY))
        except FileNotFoundError:  # renamed between listing and opening: list again
            for fd in fds:
                os.close(fd)
            continue
        try:
            yield [Path(f"/proc/self/fd/{fd}") for fd in fds]
        finally:
            for fd in fds:
                os.close(fd)
        return
    raise DriverError(f"the chunks of {directory} kept changing while being opened")


@dataclass
class PacketStats:
    captured: int = 0
    received: int = 0
    dropped_kernel: int = 0
    dropped_interface: int = 0


def parse_stats(stderr_text: str) -> PacketStats:
    stats = PacketStats()
    names = {"captured": "captured", "received by filter": "received",
             "dropped by kernel": "dropped_kernel", "dropped by interface": "dropped_interface"}
    for line in stderr_text.splitlines():
        m = _STAT_RE.match(line.strip())
        if m:
            setattr(stats, names[m.group(2)], int(m.group(1)))
    return stats


class TcpdumpDriver:
    def __init__(self, directory: Path, interface: str, segment: int, *, snaplen: int, bpf: str | None,
                 buffer_kib: int, chunk_mb: int, stop_ns: int | None = None, user: str | None = None) -> None:
        self.directory, self.interface, self.segment, self.stop_ns = directory, interface, segment, stop_ns
        self.snaplen, self.bpf, self.buffer_kib, self.chunk_mb = snaplen, bpf, buffer_kib, chunk_mb
        self.user = user  # tcpdump drops root to this user once the interface is open; None: it stays root
        self.log = directory / f"tcpdump-{segment:03d}.log"
        self.proc: subprocess.Popen | None = None
        self._last_written: tuple[str, int] | None = ("", -1)  # nothing seen yet

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def argv(self) -> list[str]:
        argv = [tcpdump_path(), "-i", self.interface, "-n", "-B", str(self.buffer_kib), "-s", str(self.snaplen),
                "-C", str(self.chunk_mb), "-Z", self.user or "root",
                "-w", str(self.directory / f".seg{self.segment:03d}.pcap")]
        # "--" ends option parsing, so a filter can never be read as a tcpdump option.
        return argv + (["--", self.bpf] if self.bpf else [])

    def start(self, ready_timeout: float = 10.0) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = children.spawn(self.argv(), self.log)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:  # "listening on" means the socket is bound and filtering
            if "listening on" in self._log_text():
                return
            if self.proc.poll() is not None:
                raise DriverError(f"tcpdump exited with {self.proc.returncode}: {self._log_text().strip()}")
            time.sleep(0.02)
        children.stop(self.proc)
        raise DriverError(f"tcpdump did not start listening within {ready_timeout:.0f} s")

    def _log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def failure(self) -> str:
        lines = [ln for ln in self._log_text().splitlines() if ln and not _STAT_RE.match(ln)]
        return f"tcpdump exited with {self.proc.returncode if self.proc else '?'}: " + "; ".join(lines[-3:])

    def tick(self) -> None:
        # tcpdump keeps up to a stdio buffer of packets unwritten while traffic is slow; SIGUSR2 makes it
        # flush, so a retrieve or the flow meter sees packets within about a second (libpcap's block timeout).
        # Only when nothing reached the file since the last tick: tcpdump flushes inside its signal handler,
        # which corrupts a record when the signal lands in the middle of a write (seen at 100 kpps with a
        # signal every 0.25 s). Busy traffic fills the buffer and writes itself; idle tcpdump waits in poll().
        hidden = _hidden_chunks(self.directory) if self.directory.is_dir() else []
        written = _size_of_newest(hidden)
        if self.alive() and written == self._last_written:
            self.proc.send_signal(signal.SIGUSR2)
        self._last_written = written
        publish_closed(self.directory, keep_last=True, hidden=hidden)

    def stop(self, whole: bool = True) -> list[str]:
        """Stop tcpdump and publish its chunks; return what makes the data incomplete (nothing, normally).
        tcpdump's own count of the packets it wrote is compared with the records in its files: a full disk or
        a directory removed under it shows up here (tcpdump itself carries on quietly). whole=False: only stop
        and publish; the caller (the netflow driver) reads the chunks first, then compares and cuts."""
        if self.proc is not None:
            children.stop(self.proc)
        if not self.directory.is_dir():
            return [storage.DIR_REMOVED]
        publish_closed(self.directory, keep_last=False)
        if not whole:
            return []
        chunks = segment_chunks(self.directory, self.segment)
        problems = self.shortfall(pcapfile.count(chunks).packets)
        self.cut_to_window()
        return problems

    def cut_to_window(self) -> None:
        if self.stop_ns is not None:  # what tcpdump caught during the grace period is outside the window
            pcapfile.truncate_after(segment_chunks(self.directory, self.segment), self.stop_ns)

    def shortfall(self, in_files: int) -> list[str]:
        """A problem when fewer records reached the files than tcpdump says it captured."""
        captured = parse_stats(self._log_text()).captured
        if in_files >= captured:
            return []
        why = " (the disk is full)" if storage.disk_full(self.directory) else ""
        return [f"{captured - in_files} of the {captured} packets tcpdump captured are missing from its files{why}"]


def _size_of_newest(hidden: list[Path]) -> tuple[str, int] | None:
    """The open chunk and its size: what tcpdump has written so far."""
    try:
        return (hidden[-1].name, hidden[-1].stat().st_size) if hidden else None
    except FileNotFoundError:  # the directory removed meanwhile: as if it had grown (no signal)
        return None


def publish_closed(directory: Path, *, keep_last: bool, hidden: list[Path] | None = None) -> None:
    """Publish closed chunks; with keep_last, the newest chunk of the newest segment is still open. hidden: the
    hidden chunks, when the caller has just listed them."""
    if hidden is None:
        hidden = _hidden_chunks(directory) if directory.is_dir() else []
    if keep_last:
        hidden = hidden[:-1]
    for path in hidden:
        seg, n = _hidden_key(path)
        publish(path, directory / f"packets-{seg:03d}-{n:06d}.pcap")


def pinned_stream(directory: Path, render: Callable[[list[Path], list[pcapfile.Damage]], Iterator[bytes]]
                  ) -> Iterator[bytes]:
    """The chunks, opened before the first byte goes out; a damaged one ends at its last good record (the
    retrieve has checked them and told the capture beforehand)."""
    with pinned_chunks(directory) as paths:
        yield from render(paths, [])


def merged(paths: list[Path], found: list[pcapfile.Damage]) -> Iterator[bytes]:
    return pcapfile.stream_merged(paths, damage=found)


def damage(directory: Path) -> list[pcapfile.Damage]:
    """Damaged records in a capture's chunks (a fast walk over the record headers)."""
    found: list[pcapfile.Damage] = []
    pcapfile.count(chunk_files(directory), damage=found)
    return found


def drops(directory: Path) -> tuple[int, int]:
    """The kernel's and the interface's drop counts, as tcpdump reported them for each of its runs."""
    stats = [parse_stats(p.read_text(errors="replace")) for p in sorted(directory.glob("tcpdump-*.log"))]
    return sum(s.dropped_kernel for s in stats), sum(s.dropped_interface for s in stats)


def packet_totals(directory: Path) -> Totals:
    found: list[pcapfile.Damage] = []
    counted = pcapfile.count(chunk_files(directory), damage=found)
    return Totals(counted.packets, counted.wire_bytes, *drops(directory), problems=tuple(map(str, found)))
