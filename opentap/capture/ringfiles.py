"""The recorder's hidden files in a ring's directory (named as tcpdump -W names them): which one it is writing
now, the closed ones in time order, and whether a file is still the one that was listed.

With -W, the recorder (as tcpdump) reuses the oldest name once it has written as many files as allowed, so
neither names nor modification times (a clock tick can cover a rotation) say for sure which file is open. The
kernel does: the open one is among the recorder's own descriptors (/proc/PID/fd). Closed files are ordered by
their first packet's time. A file whose inode, size or time changed since it was listed was reused by the
recorder meanwhile: it must be neither indexed nor published (ring.py records the loss).
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from opentap.pcap import pcapfile

HIDDEN_RE = re.compile(r"^\.run-(\d{6})\.pcap(\d*)$")


def hidden_key(path: Path | str) -> tuple[int, int]:
    m = HIDDEN_RE.match(Path(path).name)
    assert m
    return int(m.group(1)), int(m.group(2) or 0)


def open_by(pid: int | None) -> set[str]:
    """The files a process has open (names as the kernel gives them); empty when it is gone."""
    if pid is None:
        return set()
    fds = f"/proc/{pid}/fd"
    out = set()
    try:
        for fd in os.listdir(fds):
            try:
                out.add(os.readlink(f"{fds}/{fd}"))
            except OSError:  # closed meanwhile
                continue
    except OSError:
        return set()
    return out


@dataclass(frozen=True)
class Seen:
    ino: int
    size: int
    mtime_ns: int


def seen(path: Path) -> Seen | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return Seen(st.st_ino, st.st_size, st.st_mtime_ns)


def _first_stamp(path: Path) -> int:
    """The first packet's time in ns (0: none yet, or unreadable)."""
    try:
        with open(path, "rb") as f:
            header = pcapfile.read_header(f)
            rec = f.read(8)
    except (OSError, pcapfile.PcapError):
        return 0
    if header is None or len(rec) < 8:
        return 0
    sec, frac = struct.unpack(header.struct_prefix + "II", rec)
    return sec * 1_000_000_000 + frac * (1 if header.nanosecond else 1000)


def listing(directory: Path, pid: int | None) -> tuple[list[Path], list[Path]]:
    """(closed, open): the recorder's closed files oldest first, and the one(s) process pid is writing."""
    writing = open_by(pid)
    closed, current = [], []
    for name in os.listdir(directory):
        if not HIDDEN_RE.match(name):
            continue
        path = directory / name
        if str(path) in writing or str(path.resolve()) in writing:
            current.append(path)
        else:
            closed.append((hidden_key(path)[0], _first_stamp(path), hidden_key(path)[1], path))
    return [p for *_k, p in sorted(closed)], current
