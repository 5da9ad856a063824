"""The capture engine: one thread that starts, supervises and ends captures according to their rows.

All work that touches children, capture files or capture states runs on this thread (API threads hand it
commands), so there is one writer and no lock juggling. Children are forked from this thread on purpose:
their parent-death signal is tied to it. The database is the truth: after a restart, `recover` resumes what
was running, and scheduled rows start on time because the loop only ever reads rows.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from opentap.capture import children, retention, storage
from opentap.capture.requests import Plan, RequestError
from opentap.capture.types import REGISTRY, Driver, DriverContext
from opentap.config import Config
from opentap.db.models import ACTIVE_STATES, FINAL_STATES, Capture

log = logging.getLogger("opentap.engine")
MAX_SLEEP = 0.5  # seconds between ticks when nothing is due: chunk publishing and the quota check


def fmt_time(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class CaptureEngine:
    def __init__(self, cfg: Config, sessions: sessionmaker) -> None:
        self.cfg, self.sessions = cfg, sessions
        self.active: dict[str, Driver] = {}
        self._commands: queue.Queue[tuple[Callable[[Session], Any], concurrent.futures.Future]] = queue.Queue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_gc = 0.0

    # --- life cycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="capture-engine", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop the children but leave their rows running: the next start resumes them, as after a crash."""
        self._stopping.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=30)

    def notify(self) -> None:
        self._wake.set()

    def call(self, fn: Callable[[Session], Any], timeout: float = 30) -> Any:
        """Run fn(session) on the engine thread and return its result (or raise its exception)."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._commands.put((fn, fut))
        self._wake.set()
        return fut.result(timeout)

    def _run(self) -> None:
        with self.sessions() as s:
            self._recover(s)
        while not self._stopping.is_set():
            try:
                delay = self._tick()
            except Exception:  # never let one bad row stop every capture
                log.exception("capture engine tick failed")
                delay = MAX_SLEEP
            self._wake.wait(delay)
            self._wake.clear()
        for cid, driver in list(self.active.items()):
            driver.stop()
            log.info("capture %s: stopped for shutdown, will resume at next start", cid)
        self.active.clear()

    # --- one pass -----------------------------------------------------------------------------------------
    def _tick(self) -> float:
        now = time.time()
        with self.sessions() as s:
            self._run_commands(s)
            due = s.scalars(select(Capture).where(Capture.state == "scheduled", Capture.start <= now)).all()
            for cap in due:
                self._begin(s, cap, now)
            for cid in list(self.active):
                cap = s.get(Capture, cid)
                driver = self.active[cid]
                if cap is None:  # row deleted underneath us (should not happen): just stop
                    self.active.pop(cid).stop()
                    continue
                driver.tick()
                if cap.stop + REGISTRY[cap.type].stop_grace <= time.time():
                    self._finish(s, cap, "complete")
                elif not driver.alive():
                    self._finish(s, cap, "failed", driver.failure())
            self._enforce_quota(s)
            if now >= self._next_gc:
                retention.collect(s, self.cfg, now, active=set(self.active))
                self._next_gc = now + self.cfg.gc_interval_seconds
            s.commit()
            return self._next_due(s)

    def _run_commands(self, s: Session) -> None:
        while True:
            try:
                fn, fut = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                fut.set_result(fn(s))
                s.commit()
            except Exception as e:  # the caller re-raises it
                s.rollback()
                fut.set_exception(e)

    def _next_due(self, s: Session) -> float:
        now = time.time()
        times = [s.scalar(select(func.min(Capture.start)).where(Capture.state == "scheduled"))]
        for cap in s.scalars(select(Capture).where(Capture.id.in_(list(self.active)))):
            times.append(cap.stop + REGISTRY[cap.type].stop_grace)
        due = [t - now for t in times if t is not None]
        return max(0.0, min([MAX_SLEEP, *due]))

    # --- transitions --------------------------------------------------------------------------------------
    def _begin(self, s: Session, cap: Capture, now: float) -> None:
        if cap.stop <= now:
            self._set_final(s, cap, "failed", "the daemon was not running during the capture window")
            return
        if now - cap.start > 2:
            cap.reason = _join(cap.reason, f"started {now - cap.start:.0f} s late (the daemon was not running)")
        self._launch(s, cap)

    def _launch(self, s: Session, cap: Capture) -> None:
        ctype = REGISTRY[cap.type]
        cap.segments += 1
        ctx = DriverContext(storage.capture_dir(self.cfg.data_dir, cap.id), cap.interface, cap.segments,
                            dict(cap.options), self.cfg.capture_buffer_kib, self.cfg.chunk_mb,
                            self.cfg.flow_active_timeout, self.cfg.flow_idle_timeout, int(cap.stop * 1e9))
        driver = ctype.make_driver(ctx)
        try:
            driver.start()
        except Exception as e:
            self._set_final(s, cap, "failed", str(e))
            log.warning("capture %s failed to start: %s", cap.id, e)
            return
        self.active[cap.id] = driver
        cap.state, cap.child_pid = "running", driver.pid
        cap.started_at = cap.started_at or time.time()
        s.commit()
        log.info("capture %s (%s on %s) running until %s", cap.id, cap.type, cap.interface, fmt_time(cap.stop))

    def _finish(self, s: Session, cap: Capture, state: str, reason: str = "") -> None:
        driver = self.active.pop(cap.id, None)
        if driver is not None:
            driver.stop()
        if state == "complete" and cap.reason:  # a gap was recorded earlier (restart, late start, quota)
            state = "truncated"
        self._set_final(s, cap, state, reason)

    def _set_final(self, s: Session, cap: Capture, state: str, reason: str = "") -> None:
        directory = storage.capture_dir(self.cfg.data_dir, cap.id)
        ctype = REGISTRY[cap.type]
        if directory.is_dir():
            ctype.finalize(directory)
            totals = ctype.totals(directory)
            cap.packets, cap.bytes = totals.packets, totals.bytes
            cap.drops_kernel, cap.drops_interface = totals.drops_kernel, totals.drops_interface
            cap.stats = totals.stats
            cap.data_bytes = storage.tree_size(directory)
            if state == "failed" and totals.packets:  # it died, but what it captured until then is kept
                state = "truncated"
        cap.state, cap.reason, cap.child_pid = state, _join(cap.reason, reason), None
        cap.finished_at = time.time()
        s.commit()
        log.info("capture %s %s%s", cap.id, state, f": {cap.reason}" if cap.reason else "")

    def create(self, s: Session, plan: Plan, project: str) -> Capture:
        """Engine-thread half of a capture request: the checks that depend on other rows, then the insert,
        in one place so two requests cannot both take the last slot or the same id."""
        if plan.id is not None and s.get(Capture, plan.id) is not None:
            raise RequestError(409, f"the id '{plan.id}' is already used by another capture; choose another")
        overlapping = s.scalar(select(func.count()).select_from(Capture).where(
            Capture.state.in_(ACTIVE_STATES), Capture.start < plan.stop, Capture.stop > plan.start))
        if overlapping >= self.cfg.max_concurrent_captures:
            raise RequestError(429, f"too many concurrent captures: {overlapping} already overlap this window "
                                    f"(this device allows {self.cfg.max_concurrent_captures})")
        if self.usage(s) >= self.cfg.disk_quota_bytes:
            raise RequestError(507, f"the disk quota of {self.cfg.disk_quota_mb:g} MB for captured data is full; "
                                    "delete captures or wait for the retention period to pass")
        cap = Capture(id=plan.id or str(uuid.uuid4()), type=plan.type, project_id=project,
                      observation_point=plan.point.name, interface=plan.point.interface, start=plan.start,
                      stop=plan.stop, state="scheduled", options=plan.options, created_at=time.time(),
                      packets=0, bytes=0, drops_kernel=0, drops_interface=0, data_bytes=0, segments=0, reason="",
                      stats={})
        s.add(cap)
        s.commit()
        return cap

    def cancel(self, s: Session, cap: Capture, who: str) -> None:
        """Engine-thread half of a DELETE on a scheduled or running capture."""
        if cap.state == "running":
            self._finish(s, cap, "cancelled", f"cancelled by {who}")
        else:
            self._set_final(s, cap, "cancelled", f"cancelled by {who} before it started")

    def delete(self, s: Session, cap: Capture) -> None:
        storage.remove(storage.capture_dir(self.cfg.data_dir, cap.id))
        s.delete(cap)
        s.commit()

    # --- quota and recovery -------------------------------------------------------------------------------
    def usage(self, s: Session) -> int:
        finished = s.scalar(select(func.coalesce(func.sum(Capture.data_bytes), 0))
                            .where(Capture.state.in_(FINAL_STATES))) or 0
        live = sum(storage.tree_size(storage.capture_dir(self.cfg.data_dir, cid)) for cid in self.active)
        return int(finished) + live

    def _enforce_quota(self, s: Session) -> None:
        if not self.active or self.usage(s) < self.cfg.disk_quota_bytes:
            return
        for cid in list(self.active):
            cap = s.get(Capture, cid)
            if cap is not None:
                self._finish(s, cap, "truncated",
                             f"stopped at {fmt_time(time.time())}: the disk quota of "
                             f"{self.cfg.disk_quota_mb:g} MB for captured data was reached")

    def _recover(self, s: Session) -> None:
        """Pick up after a previous daemon, which may have been killed with -9."""
        now = time.time()
        for cap in s.scalars(select(Capture).where(Capture.state == "running")).all():
            directory = storage.capture_dir(self.cfg.data_dir, cap.id)
            if children.kill_orphan(cap.child_pid, str(directory)):
                _wait_gone(cap.child_pid)
            last = _last_write(directory) or cap.started_at or now
            if cap.stop > now:
                cap.reason = _join(cap.reason, f"the daemon was down from about {fmt_time(last)} to "
                                               f"{fmt_time(now)}: no data for that gap")
                REGISTRY[cap.type].finalize(directory)
                self._launch(s, cap)
            else:
                self._set_final(s, cap, "truncated", f"the daemon stopped at about {fmt_time(last)}, before "
                                                     "the window ended; the data up to then is kept")
        s.commit()


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else a or b


def _last_write(directory: os.PathLike[str]) -> float | None:
    try:
        return max((e.stat().st_mtime for e in os.scandir(directory)), default=None)
    except FileNotFoundError:
        return None


def _wait_gone(pid: int | None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while pid and os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):  # reap it if it is ours; otherwise init will
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
