"""A sampler's bookkeeping: the absolute schedule, how late each sample was taken, and the runs of samples a
sensor gave no value for; and the real-time class samplers run in. Used by capture/sensor.py and
capture/linkstats.py; nothing here touches a sensor or a file."""

from __future__ import annotations

import math
import os
import time
from typing import Any


def realtime() -> bool:
    """Put the calling thread in the real-time class at the lowest priority (SCHED_FIFO 1) when the daemon may
    (root, CAP_SYS_NICE). On a busy host an ordinary thread's wake-up waits for the CPU: a bare 10 ms loop here
    measured p99 lateness of 8-20 ms among other processes, 0.2 ms as SCHED_FIFO. A sampler runs for tens of
    microseconds a period and always waits before its next sample (it skips, never catches up), so it cannot
    hold a CPU; the kernel's real-time throttling caps the class at 95 % of each second anyway."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))  # 0: this thread
    except (OSError, AttributeError):  # not permitted (not root), or not Linux: an ordinary thread, later rows
        return False
    return True


def missed_reason(missed: int, rows: int, period_ms: float) -> str:
    """What a sampler that fell behind says of its data (linkstats and sensors alike)."""
    return f"{missed} of {rows + missed} samples were missed: the sampler fell behind its {period_ms:g} ms period"


class Schedule:
    """Sample k is due at start + k * period (UNIX ms) and is stamped with that time, whenever it was taken. The
    times are waited for on the monotonic clock, mapped to UNIX time once, so nothing accumulates: a late sample
    makes the next one no later, and a step of the wall clock (NTP) cannot bunch or stretch the rows."""

    def __init__(self, start_ms: int, period_ms: int, stop_ms: int) -> None:
        self.start_ms, self.period_ms, self.stop_ms = start_ms, period_ms, stop_ms
        self.count = max(0, math.ceil((stop_ms - start_ms) / period_ms))  # samples inside [start, stop)
        # the start on the monotonic clock, mapped once; times are then counted from it (small numbers: no
        # precision lost to UNIX time's magnitude)
        self._mono0 = start_ms / 1000 + (time.monotonic() - time.time())

    def at_ms(self, k: int) -> int:
        return self.start_ms + k * self.period_ms

    def mono(self, k: int) -> float:
        return self._mono0 + k * self.period_ms / 1000

    def due(self, mono: float) -> int:
        """The last sample whose time has come at this monotonic time (-1 before the first)."""
        return math.floor((mono - self._mono0) * 1000 / self.period_ms + 1e-6)


class Lateness:
    """How late samples were taken against their schedule: a histogram of 50 µs buckets up to 100 ms (one
    beyond for later), and the exact maximum. Kept per segment in its JSON; merged over segments."""

    BUCKET_US = 50
    BUCKETS = 2000

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.max_us = 0

    def add(self, seconds: float) -> None:
        us = max(0, int(seconds * 1e6))
        bucket = min(us // self.BUCKET_US, self.BUCKETS)
        self.counts[bucket] = self.counts.get(bucket, 0) + 1
        self.max_us = max(self.max_us, us)

    def to_json(self) -> dict[str, Any]:
        return {"hist": {str(b): n for b, n in sorted(self.counts.items())}, "max_us": self.max_us}

    def merge(self, doc: dict[str, Any]) -> None:
        for b, n in doc.get("hist", {}).items():
            self.counts[int(b)] = self.counts.get(int(b), 0) + int(n)
        self.max_us = max(self.max_us, int(doc.get("max_us", 0)))

    def percentile(self, p: float) -> int:
        """The p-th percentile in µs, to the bucket's upper edge (the maximum when it falls in the top one)."""
        total = sum(self.counts.values())
        if not total:
            return 0
        rank, seen = math.ceil(total * p / 100), 0
        for b in sorted(self.counts):
            seen += self.counts[b]
            if seen >= rank:
                return self.max_us if b >= self.BUCKETS else min((b + 1) * self.BUCKET_US, self.max_us)
        return self.max_us


def fmt_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


class Gaps:
    """Per sensor, the runs of samples it gave no value for (detached, unreadable): the capture's reason lists
    them, since an empty field alone does not say why."""

    MAX_LISTED = 5  # per sensor; more are counted

    def __init__(self, labels: list[str]) -> None:
        self.labels = labels
        self._open: list[tuple[int, int, int, str] | None] = [None] * len(labels)  # first, last, samples, why
        self.closed: list[list[tuple[int, int, int, str]]] = [[] for _ in labels]
        self.empty = 0

    def note(self, i: int, at_ms: int, missing: bool, why: str = "") -> None:
        run = self._open[i]
        if missing:
            self.empty += 1
            self._open[i] = (at_ms, at_ms, 1, why) if run is None else (run[0], at_ms, run[2] + 1, run[3])
        elif run is not None:
            self.closed[i].append(run)
            self._open[i] = None

    def finish(self) -> None:
        for i, run in enumerate(self._open):
            if run is not None:
                self.closed[i].append(run)
                self._open[i] = None

    def reasons(self) -> list[str]:
        self.finish()
        out = []
        for label, runs in zip(self.labels, self.closed, strict=True):
            for first, last, n, why in runs[: self.MAX_LISTED]:
                span = fmt_ms(first) if first == last else f"{fmt_ms(first)} to {fmt_ms(last)}"
                out.append(f"{label} gave no value at {span} ({n} sample{'s' * (n != 1)} left empty)"
                           + (f": {why}" if why else ""))
            if len(runs) > self.MAX_LISTED:
                out.append(f"{label}: {len(runs) - self.MAX_LISTED} more gaps")
        return out
