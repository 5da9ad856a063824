"""One observation point's ring: a recorder (ringrecorder.py: libpcap, tcpdump's -C/-W blocks) captures the
point all the time into blocks, each indexed and published when closed, the oldest deleted so that the ring's
directory never holds more than its budget.

    <data_dir>/rings/<point>/
        ring.json                         the runs (when the recorder was recording) and how far eviction has reached
        .run-000003.pcap0, .pcap1 ...     the recorder's blocks, hidden while it may still write them
        block-000003-000000.pcap (.idx)   closed blocks and their indexes (ringindex.py); the index goes first

The budget holds by construction: the recorder writes at most HIDDEN_FILES hidden blocks (as tcpdump -W; blocks
are 1/32 of the budget, at most 64 MB) and room for them is kept; publishing is a rename, and before each one the
oldest published blocks are deleted until what is published plus that room fits. A pass runs every POLL seconds in the
ring's own thread, which also forked the recorder (its parent-death signal is tied to that thread).

A run is one recorder process. ring.json records when each began listening and when it ended, so that a
question about a time the ring was not recording (the daemon down, the ring off) is answered as a gap,
never as "no packets".
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from opentap.capture import children, ringdrops, ringfiles, ringindex, storage
from opentap.pcap import pcapfile

log = logging.getLogger("opentap.ring")
POLL = 0.25  # seconds between passes: flush, publish, evict
# seconds a packet may wait in the kernel (libpcap's 1 s block timeout) and then in the recorder (which flushes
# after each catch-up with the kernel, waiting at most 0.25 s for it) before it is in the file: what is stamped
# earlier than this before now is in the ring's files (tests/system/test_ring_recorder.py holds it)
FLUSH_LAG = 2.0
RESTART_AFTER = 5.0  # seconds before a recorder that died is started again
SNAPLEN = 262144
# the recorder's -W (tcpdump's): it keeps at most this many hidden files and then reuses the oldest name, so
# however far the ring's thread falls behind (a busy host), the unpublished part stays bounded without it.
# Falling that far behind overwrites a block: the pass that finds every slot taken records a possible loss, told
# as a gap (ringfiles.py).
HIDDEN_FILES = 8
_BLOCK_RE = re.compile(r"^block-(\d{6})-(\d{6})\.pcap$")


def block_mb(budget_mb: float) -> int:
    """The recorder's -C for a ring (millions of bytes): 1/32 of the budget, 1 to 64."""
    return max(1, min(64, int(budget_mb // 32)))


def reserve_bytes(budget_mb: float) -> int:
    """Room kept for blocks not yet published: the recorder's -W files, each at most -C plus a record (it
    rotates after the write that passes -C, as tcpdump does) and a margin of one more."""
    return HIDDEN_FILES * (block_mb(budget_mb) * 1_000_000 + 2 * (SNAPLEN + 16))


@dataclass(frozen=True)
class Block:
    pcap: Path
    index: Path | None  # None: still being written or not yet indexed; a query reads it whole


class Ring:
    def __init__(self, directory: Path, interface: str, budget_mb: float, *, bpf: str | None = None,
                 buffer_kib: int = 32768, user: str | None = None, file_mode: int = 0o600) -> None:
        self.directory, self.interface, self.budget_mb = directory, interface, budget_mb
        self.bpf, self.buffer_kib, self.user = bpf, buffer_kib, user
        self.file_mode = file_mode  # of the index and state files it writes (filemodes.py: nobody else's business)
        self.error: str | None = None
        self.purged = False  # its blocks were deleted (DELETE /rings/{point}): nothing more can be copied from it
        self._lock = threading.Lock()  # the state below is read by API threads
        self._state = self._load()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None
        self._run = 0
        self._drops: ringdrops.DropWatch | None = None

    @property
    def budget_bytes(self) -> int:
        return int(self.budget_mb * 1024 * 1024)

    # --- state --------------------------------------------------------------------------------------------
    def _load(self) -> dict:
        try:
            state = json.loads((self.directory / "ring.json").read_text())
        except (OSError, ValueError):
            state = {}
        runs = [r for r in state.get("runs", []) if isinstance(r, dict) and "start" in r]
        for r in runs:  # a run a crash left open ended, at the latest, with the last block it wrote
            if r.get("stop") is None:
                r["stop"] = self._last_write(r.get("run", 0)) or r["start"]
        lost = [x for x in state.get("lost", []) if isinstance(x, list) and len(x) == 2]
        return {"runs": runs, "evicted_through": float(state.get("evicted_through", 0.0)), "lost": lost}

    def _last_write(self, run: int) -> float | None:
        times = [p.stat().st_mtime for p in self._run_files(run)]
        return max(times) if times else None

    def _run_files(self, run: int) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return [p for p in self.directory.iterdir() if p.name.startswith((f"block-{run:06d}-", f".run-{run:06d}."))]

    def _save(self) -> None:
        hidden = self.directory / ".ring.json.tmp"
        with self._lock:
            text = json.dumps(self._state)
        hidden.write_text(text)
        os.chmod(hidden, self.file_mode)
        os.replace(hidden, self.directory / "ring.json")

    # --- what queries and /capabilities see --------------------------------------------------------------
    def since(self) -> float | None:
        """From when the ring holds every packet it recorded: the start of its oldest run, or where eviction
        has reached. None: it has never recorded."""
        with self._lock:
            runs = self._state["runs"]
            if not runs:
                return None
            return max(runs[0]["start"], self._state["evicted_through"])

    def gaps(self, start: float, stop: float) -> list[tuple[float, float]]:
        """The parts of [start, stop] during which the ring was not recording, or may have lost blocks."""
        with self._lock:
            spans = [(r["start"], r["stop"] if r["stop"] is not None else time.time()) for r in self._state["runs"]]
            lost = [(a, b) for a, b in self._state.get("lost", []) if b > start and a < stop]
        out, at = [], start
        for a, b in spans:
            if a > at and at < stop:
                out.append((at, min(a, stop)))
            at = max(at, b)
        if at < stop and not self.recording:
            out.append((at, stop))
        out += [(max(a, start), min(b, stop)) for a, b in lost]
        merged: list[tuple[float, float]] = []
        for a, b in sorted(x for x in out if x[1] - x[0] > 0.001):  # overlapping ones told as one
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        return merged

    def evicted_through(self) -> float:
        """Every packet stamped before this time has been deleted to keep the budget (0: none yet)."""
        with self._lock:
            return self._state["evicted_through"]

    def flushed_through(self) -> float:
        """Every packet stamped before this time is in the ring's files (a ring that is not recording has
        written everything it will)."""
        if not self.recording:
            return time.time()
        return max(self._started, time.time() - FLUSH_LAG)

    @property
    def recording(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and not self._stop.is_set()

    def blocks(self) -> list[Block]:
        """Every block in time order: published (with index), then those the recorder may still be writing."""
        if not self.directory.is_dir():
            return []
        names = os.listdir(self.directory)
        published = sorted(n for n in names if _BLOCK_RE.match(n))
        out = []
        for n in published:
            idx = self.directory / n.replace(".pcap", ".idx")
            out.append(Block(self.directory / n, idx if idx.exists() else None))
        return out + [Block(p, None) for p in self._hidden()]

    def status(self) -> dict:
        since = self.since()
        return {"interface": self.interface, "ring_mb": self.budget_mb, "recording": self.recording,
                "ring_since": since, "bytes": storage.tree_size(self.directory) if self.directory.is_dir() else 0,
                "blocks": len(self.blocks()), "error": self.error,
                "dropped_kernel": self._drops.dropped if self._drops is not None else 0}

    # --- life cycle ---------------------------------------------------------------------------------------
    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name=f"ring-{self.directory.name}", daemon=True)
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        """Stop recording; with wait=False only ask (several rings then stop together: see join)."""
        self._stop.set()
        if wait:
            self.join()

    def join(self) -> None:
        if self._thread:
            self._thread.join(timeout=30)

    def _spawn(self) -> None:
        runs = [r.get("run", 0) for r in self._state["runs"]] + [ringfiles.hidden_key(p)[0] for p in self._hidden()]
        runs += [int(m.group(1)) for n in os.listdir(self.directory) if (m := _BLOCK_RE.match(n))]
        self._run = max(runs, default=0) + 1
        # not tcpdump: with -U it writes each packet on its own (2.5 times its CPU), and its SIGUSR2 flush, run
        # inside its signal handler, corrupted blocks when it landed inside a write (ringrecorder.py)
        argv = [sys.executable, "-m", "opentap.capture.ringrecorder", "--interface", self.interface,
                "--out", str(self.directory / f".run-{self._run:06d}.pcap"),
                "--block-mb", str(block_mb(self.budget_mb)), "--files", str(HIDDEN_FILES),
                "--buffer-kib", str(self.buffer_kib), "--snaplen", str(SNAPLEN),
                "--mode", f"{self.file_mode:o}", "--user", self.user or "root"]
        log_path = self.directory / f"recorder-{self._run:06d}.log"
        self._proc = children.spawn(argv + ([f"--filter={self.bpf}"] if self.bpf else []), log_path)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "listening on" not in _text(log_path):
            if self._proc.poll() is not None:
                break
            time.sleep(0.02)
        if self._proc.poll() is not None or "listening on" not in _text(log_path):
            children.stop(self._proc)
            self._proc = None
            raise RuntimeError(f"the ring's recorder did not start: {_text(log_path).strip()[-300:]}")
        for line in _text(log_path).splitlines():  # e.g. its priority could not be raised (no CAP_SYS_NICE)
            if line.startswith("warning:"):
                log.warning("ring %s: %s", self.directory.name, line)
        for old in [*self.directory.glob("recorder-*.log"), *self.directory.glob("tcpdump-*.log")]:
            if old != log_path:  # only the running one's drop counts matter (tcpdump-*: before the recorder)
                old.unlink(missing_ok=True)
        with self._lock:
            self._state["runs"].append({"run": self._run, "start": time.time(), "stop": None})
        self._save()
        self._started = time.time()
        self._drops = ringdrops.DropWatch(log_path)

    def _end_run(self, stopped: float | None = None) -> None:
        if self._proc is not None:
            children.stop(self._proc)  # it prints its final counts as it goes
            self._proc = None
            if self._drops is not None and (found := self._drops.new_drops())[0]:
                self._lost(f"the kernel dropped {found[0]} packets (the recorder could not keep up)",
                           found[1] - FLUSH_LAG)
        with self._lock:
            for r in self._state["runs"]:
                if r.get("stop") is None:
                    r["stop"] = stopped or time.time()
        self._publish(keep_last=False)
        self._save()

    def _loop(self) -> None:
        retry_at = 0.0
        while not self._stop.is_set():
            try:
                if self._proc is None or self._proc.poll() is not None:
                    if self._proc is not None:  # it died: the run ends here, and a new one starts soon
                        self.error = f"the recorder exited with {self._proc.returncode}"
                        self._end_run()
                        retry_at = time.monotonic() + RESTART_AFTER
                    if time.monotonic() >= retry_at:
                        self._spawn()
                        self.error = None
                else:
                    self._pass()
            except Exception as e:  # a full disk, a vanished interface: said in the status, tried again
                log.warning("ring %s: %s", self.directory.name, e)
                self.error = str(e)
                retry_at = time.monotonic() + RESTART_AFTER
            self._stop.wait(POLL)
        stopped = time.time()
        if self._proc is not None and self._proc.poll() is None:
            # libpcap hands a block of packets over within a second: wait for what came before the stop to be
            # written, and only then end the recorder (SIGTERM would drop the block still in the kernel)
            time.sleep(FLUSH_LAG)
        with contextlib.suppress(Exception):
            self._end_run(stopped)

    def _pass(self) -> None:
        assert self._proc is not None and self._drops is not None
        self._drops.ask(self._proc)
        dropped, since = self._drops.new_drops()
        if dropped:
            self._lost(f"the kernel dropped {dropped} packets (the recorder could not keep up)", since - FLUSH_LAG)
        self._publish(keep_last=True)

    def _pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _hidden(self) -> list[Path]:
        """The recorder's files: the closed ones oldest first, then the one it is writing."""
        closed, current = ringfiles.listing(self.directory, self._pid())
        return closed + current

    def _lost(self, why: str, since: float | None = None) -> None:
        """Record that packets from since (default: the end of the last published block) to now may be gone (a
        block overwritten before it was published, the kernel's drops): a capture over that time says so."""
        if since is None:
            published = [n for n in os.listdir(self.directory) if _BLOCK_RE.match(n)]
            try:
                since = ringindex.read(self.directory / max(published).replace(".pcap", ".idx")).last_ns / 1e9
            except (OSError, ValueError):
                since = self._started
        log.warning("ring %s: %s", self.directory.name, why)
        with self._lock:
            self._state.setdefault("lost", []).append([since, time.time()])
        self._save()

    def _publish(self, *, keep_last: bool) -> None:
        closed, current = ringfiles.listing(self.directory, self._pid() if keep_last else None)
        if keep_last and sum(ringfiles.hidden_key(p)[0] == self._run for p in closed) >= HIDDEN_FILES - 1:
            self._lost("fell behind: the recorder's next block overwrites one not yet indexed")
        for path in closed:
            before = ringfiles.seen(path)
            try:
                index = ringindex.build(path)
            except pcapfile.PcapError as e:
                if ringfiles.seen(path) == before:  # damaged in itself: nothing in it can be trusted
                    path.unlink(missing_ok=True)
                    self._lost(f"a block was damaged and is dropped: {e}")
                    continue
                index = None
            if index is None or ringfiles.seen(path) != before or str(path) in ringfiles.open_by(self._pid()):
                self._lost("a block was reused by the recorder while it was indexed (the ring fell behind)")
                return  # it is the recorder's open file now: the next pass sees the files as they are
            self._evict()
            run = ringfiles.hidden_key(path)[0]
            numbers = [int(m.group(2)) for n in os.listdir(self.directory)
                       if (m := _BLOCK_RE.match(n)) and int(m.group(1)) == run]
            name = f"block-{run:06d}-{max(numbers, default=-1) + 1:06d}"
            ringindex.write(index, self.directory / f"{name}.idx", self.file_mode)
            storage.publish(path, self.directory / f"{name}.pcap")
        self._evict()

    def _evict(self) -> None:
        """Delete the oldest blocks until what is on disk plus the room for unpublished blocks fits."""
        blocks = [b for b in self.blocks() if _BLOCK_RE.match(b.pcap.name)]
        used = storage.tree_size(self.directory)
        unpublished = sum(_size(p) for p in self._hidden())
        evicted = False
        while blocks and used - unpublished + reserve_bytes(self.budget_mb) > self.budget_bytes:
            oldest = blocks.pop(0)
            idx = oldest.pcap.with_suffix(".idx")
            try:
                last = ringindex.read(idx).last_ns / 1e9
            except (OSError, ValueError):
                last = oldest.pcap.stat().st_mtime
            freed = _size(oldest.pcap) + _size(idx)
            oldest.pcap.unlink(missing_ok=True)
            idx.unlink(missing_ok=True)
            used -= freed
            with self._lock:
                self._state["evicted_through"] = max(self._state["evicted_through"], last)
                self._state["runs"] = [r for r in self._state["runs"]
                                       if r["stop"] is None or r["stop"] > self._state["evicted_through"]]
            evicted = True
        if evicted:
            self._save()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
