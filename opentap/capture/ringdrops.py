"""The kernel drops of a ring's recorder (ringrecorder.py), as they happen, so that a capture copied from the
ring over that time says packets are missing instead of passing for complete.

The recorder prints its counts ("N packets dropped by kernel", tcpdump's words, as tcpdump does) to its stderr
when sent SIGUSR1. Its handler only sets a flag (Python runs it between two of libpcap's dispatches, never inside
a write), so asking is safe at any moment. The log is read from its end and emptied when it grows large (the
recorder appends to it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

DROPPED_RE = re.compile(r"(\d+) packets? dropped by kernel")  # "tcpdump: N packets captured, ..., K packets
# dropped by kernel" on SIGUSR1; one count a line at exit
ASK_EVERY = 1.0  # seconds
TAIL = 4096  # bytes of the log that hold the latest counts
MAX_LOG = 1 << 16


class DropWatch:
    def __init__(self, log: Path) -> None:
        self.log = log
        self.dropped = 0  # the latest count, for the running tcpdump
        self.asked_at = 0.0
        self.counted_at = time.time()  # when the count was last read

    def ask(self, proc: subprocess.Popen) -> None:
        if time.time() - self.asked_at >= ASK_EVERY and proc.poll() is None:
            proc.send_signal(signal.SIGUSR1)
            self.asked_at = time.time()

    def new_drops(self) -> tuple[int, float]:
        """(packets dropped since the last call, when the last call was): 0 while nothing changed."""
        try:
            with open(self.log, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - TAIL))
                tail = f.read().decode(errors="replace")
        except FileNotFoundError:
            return 0, self.counted_at
        counts = DROPPED_RE.findall(tail[tail.find("\n") + 1:] if size > TAIL else tail)
        latest = int(counts[-1]) if counts else self.dropped
        if size > MAX_LOG:
            os.truncate(self.log, 0)
        before, self.counted_at = self.counted_at, time.time()
        new, self.dropped = max(0, latest - self.dropped), max(self.dropped, latest)
        return new, before
