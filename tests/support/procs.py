"""Processes as the kernel lists them: which tcpdumps work in a directory (their command line names it)."""

from __future__ import annotations

import os
from pathlib import Path


def tcpdumps_for(directory: Path) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "tcpdump" in cmd and str(directory) in cmd:
            found.append(int(pid))
    return found
