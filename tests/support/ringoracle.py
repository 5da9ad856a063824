"""A plain tcpdump of an interface, run beside the device's ring as the reference for what the ring must give
back: the records of a window, filtered by libpcap the same way (tcpdump -r REF -w OUT FILTER)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from opentap.pcap import pcapfile

Record = tuple[int, bytes]  # (timestamp ns, captured bytes)


class PlainTcpdump:
    def __init__(self, interface: str, path: Path) -> None:
        self.interface, self.path = interface, path
        self.log = path.with_suffix(".log")
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> PlainTcpdump:
        tcpdump = shutil.which("tcpdump") or "/usr/bin/tcpdump"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen([tcpdump, "-i", self.interface, "-n", "-s", "262144", "-U", "-Z", "root",
                                          "-w", str(self.path)], stderr=err, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while "listening on" not in self.log.read_text(errors="replace"):
            assert self.proc.poll() is None and time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        self.proc.wait(10)

    def records(self, start: float, stop: float, bpf: str = "") -> list[Record]:
        """The reference's records stamped in [start, stop] (as a capture's window: both ends included) that
        libpcap's filter matches; read while tcpdump still runs (-U writes each packet at once)."""
        source = self.path
        if bpf:
            source = self.path.with_name(f"{self.path.stem}-filtered.pcap")
            subprocess.run([shutil.which("tcpdump") or "tcpdump", "-r", str(self.path), "-w", str(source), "--", bpf],
                           check=True, capture_output=True)
        lo, hi = int(start * 1e9), int(stop * 1e9)
        return [(ts, data) for ts, _wire, data in pcapfile.iter_records([source]) if lo <= ts <= hi]


def records(path: Path) -> list[Record]:
    return [(ts, data) for ts, _wire, data in pcapfile.iter_records([path])]


STAMP_SLACK_NS = 1_000_000  # each packet socket stamps a sent packet itself: the two copies differ by microseconds


def assert_same(got: list[Record], want: list[Record]) -> None:
    """The same packets in the same order, each stamped within STAMP_SLACK_NS of the reference's."""
    assert [d for _t, d in got] == [d for _t, d in want], (len(got), len(want))
    worst = max((abs(a - b) for (a, _x), (b, _y) in zip(got, want, strict=True)), default=0)
    assert worst <= STAMP_SLACK_NS, worst


def between(recs: list[Record], i: int) -> float:
    """A moment between record i-1 and record i (UNIX seconds): a window edge no stamp difference can cross."""
    return (recs[i - 1][0] + recs[i][0]) / 2e9
