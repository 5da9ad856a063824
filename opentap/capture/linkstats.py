"""The linkstats driver: an interface's kernel counters sampled every `period` ms into a CSV.

This is what the original OpenTap called `ethernet`; the columns keep its names. Rows are appended to a
hidden file, flushed per row (so a retrieve sees them), and the file is published when the capture ends.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from opentap import hostif
from opentap.capture import storage
from opentap.capture.sampling import missed_reason, realtime
from opentap.capture.types import CSV_MEDIA, CaptureType, Format, Totals, file_bytes

# our column -> kernel counter file under /sys/class/net/IF/statistics
COUNTERS = {
    "rx_bytes": "rx_bytes", "rx_packets": "rx_packets", "rx_errors": "rx_errors", "rx_dropped": "rx_dropped",
    "rx_overrun": "rx_over_errors", "rx_mcast": "multicast", "tx_bytes": "tx_bytes", "tx_packets": "tx_packets",
    "tx_errors": "tx_errors", "tx_dropped": "tx_dropped", "tx_carrier": "tx_carrier_errors",
    "tx_collision": "collisions",
}
# state: 1 when the interface is administratively up (IFF_UP, what `ip link` shows as UP), else 0, as the
# original wrote it; a vanished interface is 0 with empty counters
HEADER = "time,state," + ",".join(COUNTERS) + "\n"
HIDDEN, FINAL = ".linkstats.csv", "linkstats.csv"


class Sampler:
    """An interface's counters, read with one pread per file from descriptors kept open: at a 10 ms period
    opening 14 sysfs files per row was most of the cost. A vanished interface gives state 0 and empty counters;
    one that comes back is found again."""

    def __init__(self, interface: str) -> None:
        self.base = hostif.SYS_NET / interface
        self._fds: list[int] = []

    def _open(self) -> None:
        names = ["flags", *(f"statistics/{f}" for f in COUNTERS.values())]
        fds: list[int] = []
        try:
            for name in names:
                fds.append(os.open(self.base / name, os.O_RDONLY | os.O_CLOEXEC))
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        self._fds = fds

    def _read(self) -> list[str]:
        if not self._fds:
            self._open()
        flags, *counters = (os.pread(fd, 64, 0).decode().strip() for fd in self._fds)
        return ["1" if int(flags, 16) & hostif.IFF_UP else "0", *counters]

    def row(self) -> str:
        """One CSV row: epoch ms, state (0/1), counters."""
        now_ms = time.time_ns() // 1_000_000
        try:
            values = self._read()
        except OSError:  # gone (or replaced: the old descriptors fail); try a fresh open once
            self.close()
            try:
                values = self._read()
            except OSError:
                values = ["0"] + [""] * len(COUNTERS)
        return f"{now_ms}," + ",".join(values) + "\n"

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


def sampler_stats(directory: Path) -> dict[str, int]:
    """Rows written and rows missed (the sampler fell behind its period), over every segment."""
    total = {"samples": 0, "missed_samples": 0}
    for path in sorted(directory.glob("sampler-*.json")):
        for key, value in json.loads(path.read_text()).items():
            total[key] = total.get(key, 0) + value
    return total


def data_files(directory: Path) -> list[Path]:
    return storage.text_file(directory, HIDDEN, FINAL)


def finalize(directory: Path) -> None:
    storage.publish_text(directory, HIDDEN, FINAL)


class LinkstatsDriver:
    pid = None

    def __init__(self, directory: Path, interface: str, period_ms: int, segment: int = 1) -> None:
        self.directory, self.interface, self.period = directory, interface, period_ms / 1000
        self.segment = segment
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sampler = Sampler(interface)
        self.rows = 0
        self.missed = 0  # periods that passed without a row: the data has a gap there, and says so

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file = storage.append_to(self.directory, HIDDEN, FINAL, HEADER)
        self._write(self._sampler.row())  # the first row is taken before start() returns
        self._thread = threading.Thread(target=self._run, name=f"linkstats-{self.directory.name}", daemon=True)
        self._thread.start()

    def _write(self, row: str) -> None:
        self._file.write(row)
        self._file.flush()
        self.rows += 1

    def _run(self) -> None:
        realtime()  # as a sensor sampler: on a busy host an ordinary thread woke 200 ms late and missed rows
        next_at = time.monotonic() + self.period
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self._write(self._sampler.row())
            next_at += self.period
            late = time.monotonic() - next_at
            if late > 0:  # fell behind (a busy machine): skip the missed rows, count them, don't burst
                skipped = int(late / self.period) + 1
                self.missed += skipped
                next_at += skipped * self.period

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def failure(self) -> str:
        return "the linkstats sampler stopped unexpectedly"

    def tick(self) -> None:
        pass

    def stop(self) -> list[str]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._write(self._sampler.row())  # a last row at the end of the window
        self._sampler.close()
        self._file.close()
        if not self.directory.is_dir():
            return [storage.DIR_REMOVED]
        stats = {"samples": self.rows, "missed_samples": self.missed}
        (self.directory / f"sampler-{self.segment:03d}.json").write_text(json.dumps(stats))
        finalize(self.directory)
        return [missed_reason(self.missed, self.rows, self.period * 1000)] if self.missed else []


def _totals(directory: Path) -> Totals:
    files = data_files(directory)
    if not files:
        return Totals()
    return Totals(packets=storage.data_rows(files), stats=sampler_stats(directory))  # rows, not packets


LINKSTATS = CaptureType(
    name="linkstats", point_kind="network",
    description="the interface's kernel counters sampled every `period` ms (CSV)",
    options=frozenset({"period"}),
    make_driver=lambda c: LinkstatsDriver(c.directory, c.interface, c.options.get("period", 1000), c.segment),
    formats={"csv": Format(CSV_MEDIA, "csv", lambda d: file_bytes(data_files(d)))},
    default_format="csv", totals=_totals, finalize=finalize,
)
