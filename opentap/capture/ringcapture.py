"""Captures answered from a ring: an `ethernet` or `netflow` capture whose window starts in the past.

The capture follows its point's ring rather than starting a tcpdump of its own: every POLL seconds it copies
what the ring has written since its cursor, up to where the ring is known to be complete (ring.flushed_through)
or the end of the window, into `packets-000-NNNNNN.pcap` (ringquery.py: the indexes choose the stretches, the
window is cut by timestamps, libpcap applies the filter). A window wholly in the past is done in one or two
steps; one that runs on into the future keeps following the ring until its end. The ring is one continuous
stream, so there is no seam between past and present: no packet is missed or copied twice. The copy is the
project's: deleting or evicting the ring's blocks later does not touch it.

The cursor (ring-cursor.json) is saved after each copy is published, so a daemon restart goes on from there.
Where the ring was not recording (the daemon down, the ring off), the capture says so in its reason.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from opentap.capture import netflow, outcome, ringquery, storage
from opentap.capture.flowsink import FlowSink
from opentap.capture.types import DriverContext
from opentap.flows.meter import FlowMeter, Flows
from opentap.flows.pipeline import ChunkFollower
from opentap.pcap import pcapfile

PREFIX = "packets-000-"  # before any live segment's chunks (packets-001-…)
CURSOR = "ring-cursor.json"
POLL = 1.0
WAIT_LIMIT = 30.0  # seconds after the window's end within which the ring must have written it


class RingFollow:
    pid: int | None = None  # no child of its own: the ring's recorder belongs to the ring

    def __init__(self, ctx: DriverContext, flows: bool) -> None:
        self.ring: Any = ctx.ring
        self.directory, self.bpf, self.user = ctx.directory, ctx.bpf, ctx.capture_user
        self.start_ns, self.end_ns = ctx.start_ns, ctx.stop_ns + 1  # the stop is inclusive, as for live captures
        self.flows, self.keep = flows, bool(ctx.options.get("keep_packets", False))
        self.segment = ctx.segment
        self.meter = FlowMeter(ctx.flow_active_timeout, ctx.flow_idle_timeout, until_ns=ctx.stop_ns)
        self.follower = ChunkFollower(self.meter)
        self.sink = FlowSink(ctx.directory, ctx.options.get("export"))  # the CSV, and a collector if asked
        self.error: str | None = None
        self.lost: list[tuple[float, float]] = []  # evicted from the ring before they were copied
        self._stop, self._done = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor, self._chunks = self.start_ns, 0
        self._skip: dict[bytes, int] = {}
        self.read = {"stretches": 0, "stretches_read": 0, "unindexed_blocks": 0, "bytes_read": 0, "vanished": 0}

    # --- the cursor ---------------------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            saved = json.loads((self.directory / CURSOR).read_text())
            self._cursor, self._chunks = int(saved["next_ns"]), int(saved["chunks"])
        except (OSError, ValueError, KeyError):
            self._cursor, self._chunks = self.start_ns, 0

    def _save(self) -> None:
        hidden = self.directory / f".{CURSOR}.tmp"
        hidden.write_text(json.dumps({"next_ns": self._cursor, "chunks": self._chunks, "read": self.read}))
        os.replace(hidden, self.directory / CURSOR)

    # --- the driver protocol ------------------------------------------------------------------------------
    def start(self) -> None:
        if self.ring is None:
            raise RuntimeError("the observation point's ring is gone (purged, or the point left the config)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._load()
        self._first_chunk = self._chunks  # an earlier segment's copies were metered by that segment
        if self.flows:
            self.sink.open()
        self._thread = threading.Thread(target=self._run, name=f"ring-copy-{self.directory.name}", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> bool:
        """The window is over but the ring's part of it is not copied yet: the engine waits."""
        return self.error is None and not self._done.is_set()

    def alive(self) -> bool:
        return self.error is None

    def failure(self) -> str:
        return self.error or ""

    def tick(self) -> None:
        pass  # the copying thread does the work

    def _run(self) -> None:
        ringquery.background()  # copying is background work: the ring's recorder must win the CPU
        while not self._stop.is_set():
            try:
                self._copy()
            except Exception as e:  # reported by failure(); the engine ends the capture
                self.error = f"copying from the ring failed: {e}"
                return
            if self._cursor >= self.end_ns:
                self._done.set()
                return
            if time.time() * 1e9 > self.end_ns + WAIT_LIMIT * 1e9 and self.ring.recording:
                self.error = f"the ring had not written the window's end {WAIT_LIMIT:.0f} s after it"
                return
            self._stop.wait(POLL)

    def _copy(self) -> None:
        if self.ring.purged:
            raise RuntimeError("the ring was deleted (DELETE /rings) before the window was copied; what was copied "
                               "is kept")
        through = min(int(self.ring.flushed_through() * 1e9), self.end_ns)
        if through <= self._cursor:
            return
        evicted = self.ring.evicted_through()
        result = ringquery.extract(self.ring.blocks(), self._cursor, through, self.bpf, self.directory, PREFIX,
                                   first=self._chunks, user=self.user, skip=self._skip)
        self._skip = result.resume  # the open block is not read again from its start at the next pass
        for key in self.read:
            self.read[key] += getattr(result, key)
        if result.overwritten:  # the ring recorded the loss too; said here with the time it hit this copy
            self.lost.append((self._cursor / 1e9, through / 1e9))
        if result.vanished:  # a block went while we listed: it held nothing later than what eviction reached now
            evicted = self.ring.evicted_through()
        if evicted * 1e9 > self._cursor:  # the ring deleted part of the window before it was copied
            self.lost.append((self._cursor / 1e9, min(evicted * 1e9, through) / 1e9))
        for path in result.files:
            if pcapfile.count([path]).packets:
                self._chunks += 1
            else:
                path.unlink()
        self._cursor = through
        self._save()
        if self.flows:
            self._meter()
            self._write(self.meter.expire(self._cursor))

    def _meter(self) -> None:
        chunks = [p for p in sorted(self.directory.glob(f"{PREFIX}*.pcap")) if int(p.stem[-6:]) >= self._first_chunk]
        for flows in self.follower.poll(chunks):
            self._write(flows)
        if not self.keep:
            for path in chunks:
                if self.follower.consumed(path):
                    self.follower.remove(path)

    def _write(self, flows: Flows) -> None:
        self.sink.write(flows)

    def stop(self) -> list[str]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        if not self.directory.is_dir():
            return [storage.DIR_REMOVED]
        problems = []
        if self.flows:
            if self.error is None:
                self._meter()
                self._write(self.meter.flush())
            self.sink.close()
            stats = vars(self.meter.stats) | self.sink.stats()
            (self.directory / f"meter-{self.segment:03d}.json").write_text(json.dumps(stats))
            netflow.finalize(self.directory)
        reached = min(self._cursor, self.end_ns) / 1e9
        for a, b in self.lost:
            problems.append(f"the ring deleted {outcome.fmt_time(a)} to {outcome.fmt_time(b)} to keep its budget "
                            "before it was copied: no data for that gap")
        for a, b in self.ring.gaps(self.start_ns / 1e9, reached):
            problems.append(f"the ring did not record from {outcome.fmt_time(a)} to {outcome.fmt_time(b)} (it was "
                            "off, the daemon was down, it fell behind or the kernel dropped packets): packets of that "
                            "time may be missing")
        return problems


def copied(directory: Path) -> bool:
    """Whether a ring capture's directory holds a saved cursor (it has begun copying)."""
    return (directory / CURSOR).exists()
