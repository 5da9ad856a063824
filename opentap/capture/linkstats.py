"""The linkstats driver: an interface's kernel counters sampled every `period` ms into a CSV.

This is what the original OpenTap called `ethernet`; the columns keep its names. Rows are appended to a
hidden file, flushed per row (so a retrieve sees them), and the file is published when the capture ends.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from opentap.capture.storage import publish

SYSFS = Path("/sys/class/net")
# our column -> kernel counter file under /sys/class/net/IF/statistics
COUNTERS = {
    "rx_bytes": "rx_bytes", "rx_packets": "rx_packets", "rx_errors": "rx_errors", "rx_dropped": "rx_dropped",
    "rx_overrun": "rx_over_errors", "rx_mcast": "multicast", "tx_bytes": "tx_bytes", "tx_packets": "tx_packets",
    "tx_errors": "tx_errors", "tx_dropped": "tx_dropped", "tx_carrier": "tx_carrier_errors",
    "tx_collision": "collisions",
}
HEADER = "time,state," + ",".join(COUNTERS) + "\n"
HIDDEN, FINAL = ".linkstats.csv", "linkstats.csv"


def sample(interface: str) -> str:
    """One CSV row: epoch ms, operstate, counters. A vanished interface gives state 'absent' and empty counters."""
    now_ms = time.time_ns() // 1_000_000
    base = SYSFS / interface
    try:
        state = (base / "operstate").read_text().strip()
        values = [(base / "statistics" / f).read_text().strip() for f in COUNTERS.values()]
    except OSError:
        state, values = "absent", [""] * len(COUNTERS)
    return f"{now_ms},{state}," + ",".join(values) + "\n"


def data_files(directory: Path) -> list[Path]:
    return [p for p in (directory / FINAL, directory / HIDDEN) if p.exists()][:1]


def finalize(directory: Path) -> None:
    if (directory / HIDDEN).exists():
        publish(directory / HIDDEN, directory / FINAL)


class LinkstatsDriver:
    pid = None

    def __init__(self, directory: Path, interface: str, period_ms: int) -> None:
        self.directory, self.interface, self.period = directory, interface, period_ms / 1000
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rows = 0

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / HIDDEN
        new = not path.exists()
        self._file = open(path, "a")  # noqa: SIM115 - closed by stop()
        if new:
            self._file.write(HEADER)
        self._write(sample(self.interface))  # the first row is taken before start() returns
        self._thread = threading.Thread(target=self._run, name=f"linkstats-{self.directory.name}", daemon=True)
        self._thread.start()

    def _write(self, row: str) -> None:
        self._file.write(row)
        self._file.flush()
        self.rows += 1

    def _run(self) -> None:
        next_at = time.monotonic() + self.period
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self._write(sample(self.interface))
            next_at += self.period
            if next_at < time.monotonic():  # fell behind (a stalled machine): skip, don't burst
                next_at = time.monotonic() + self.period

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def failure(self) -> str:
        return "the linkstats sampler stopped unexpectedly"

    def tick(self) -> None:
        pass

    def stop(self) -> int:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._write(sample(self.interface))  # a last row at the end of the window
        self._file.close()
        finalize(self.directory)
        return self.rows
