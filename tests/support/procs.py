"""Processes as the kernel lists them: which tcpdumps (or ring recorders) work in a directory (their command line
names it)."""

from __future__ import annotations

import os
from pathlib import Path


def _running(word: str, directory: Path) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if word in cmd and str(directory) in cmd:
            found.append(int(pid))
    return found


def tcpdumps_for(directory: Path) -> list[int]:
    return _running("tcpdump", directory)


def recorders_for(directory: Path) -> list[int]:
    """A ring's recorder (opentap.capture.ringrecorder) writing into directory."""
    return _running("opentap.capture.ringrecorder", directory)
