"""The capture engine: one thread that starts, supervises and ends captures according to their rows.

All work that touches children, capture files or capture states runs on this thread (API threads hand it
commands), so there is one writer and no lock juggling. Children are forked from this thread on purpose:
their parent-death signal is tied to it. The database is the truth: after a restart, `recover` resumes what
was running, and scheduled rows start on time because the loop only ever reads rows.

Every way out of `running` ends in a final state with a reason: a capture whose driver or files fail (a full
or read-only disk, a directory removed under it) is ended, one at a time, and the engine carries on.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from opentap import filemodes
from opentap.capture import children, limits, manifest, outcome, recovery, retention, storage
from opentap.capture.errors import RequestError
from opentap.capture.plan import Plan
from opentap.capture.registry import REGISTRY
from opentap.capture.types import CaptureType, Driver, DriverContext
from opentap.config import Config
from opentap.db.models import Capture, find

log = logging.getLogger("opentap.engine")
MAX_SLEEP = 0.5  # seconds between ticks when nothing is due: chunk publishing and the quota check
Key = limits.Key


class CaptureEngine:
    def __init__(self, cfg: Config, sessions: sessionmaker, registry: Mapping[str, CaptureType] = REGISTRY) -> None:
        self.cfg, self.sessions = cfg, sessions
        self.registry = registry  # the capture types by name: the device's, or a test's in-memory one
        self.active: dict[Key, Driver] = {}
        self._commands: queue.Queue[tuple[Callable[[Session], Any], concurrent.futures.Future]] = queue.Queue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_gc = 0.0
        self.on_final: list[Callable[[Capture], None]] = []  # told of each capture's final state (the metrics)

    # --- life cycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="capture-engine", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopping.is_set()

    def shutdown(self) -> None:
        """Stop the children but leave their rows running: the next start resumes them, as after a crash."""
        self._stopping.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=30)

    def call(self, fn: Callable[[Session], Any], timeout: float = 30) -> Any:
        """Run fn(session) on the engine thread and return its result (or raise its exception)."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._commands.put((fn, fut))
        self._wake.set()
        return fut.result(timeout)

    def directory(self, cap: Capture) -> Path:
        return storage.capture_dir(self.cfg.data_dir, cap.project_id, cap.id)

    def _run(self) -> None:
        with self.sessions() as s:
            self._recover(s)
        while not self._stopping.is_set():
            try:
                delay = self._tick()
            except Exception:  # never let one bad pass stop every capture
                log.exception("capture engine tick failed")
                delay = MAX_SLEEP
            self._wake.wait(delay)
            self._wake.clear()
        self._stop_for_shutdown()

    def _stop_for_shutdown(self) -> None:
        """A clean stop: each driver ends its segment as at the end of a window (tcpdump flushes, the meter
        writes out its open flows) and the row, still running, says when the device stopped, so that the next
        start tells a stop from a crash."""
        with self.sessions() as s:
            for k, driver in list(self.active.items()):
                try:
                    driver.stop()
                except Exception as e:  # its segment did not end cleanly: the next start treats it as a crash
                    log.warning("capture %s of %s: stopping it for shutdown failed: %s", k[1], k[0], e)
                    continue
                cap = find(s, *k)
                if cap is not None:
                    stopped = f"{outcome.STOPPED} {outcome.fmt_time(time.time())}"
                    cap.reason, cap.child_pid = outcome.join(cap.reason, stopped), None
                    s.commit()
                    self._describe(cap)
                log.info("capture %s of %s: stopped for shutdown, will resume at next start", k[1], k[0])
        self.active.clear()

    # --- one pass -----------------------------------------------------------------------------------------
    def _tick(self) -> float:
        now = time.time()
        with self.sessions() as s:
            self._run_commands(s)
            due = s.scalars(select(Capture).where(Capture.state == "scheduled", Capture.start <= now)).all()
            for cap in due:
                self._guarded(s, cap, lambda c: self._begin(s, c, now))
            for k in list(self.active):
                cap = find(s, *k)
                if cap is None:  # row deleted underneath us (should not happen): just stop
                    with contextlib.suppress(Exception):
                        self.active.pop(k).stop()
                    continue
                self._guarded(s, cap, lambda c: self._supervise(s, c))
            self._enforce_limits(s)
            if now >= self._next_gc:
                retention.collect(s, self.cfg, now)
                recovery.account_for_dirs(s, self.cfg, set(self.active))
                self._next_gc = now + self.cfg.gc_interval_seconds
            s.commit()
            return self._next_due(s)

    def _guarded(self, s: Session, cap: Capture, step: Callable[[Capture], None]) -> None:
        """One capture's step; if it raises, that capture ends (failed, or truncated on a full disk) with the
        error as its reason, and the others carry on."""
        try:
            step(cap)
        except Exception as e:
            s.rollback()
            log.exception("capture %s of %s: %s", cap.id, cap.project_id, e)
            state, reason = outcome.io_failure(e)
            self._end(s, cap, state, reason)

    def _supervise(self, s: Session, cap: Capture) -> None:
        driver = self.active[outcome.key(cap)]
        if storage.disk_full(self.directory(cap)):  # stop while what was written can still be published
            self._finish(s, cap, "truncated", f"disk full at {outcome.fmt_time(time.time())}")
            return
        driver.tick()
        if cap.stop + self.registry[cap.type].stop_grace <= time.time():
            self._finish(s, cap, "complete")
        elif not driver.alive():
            self._finish(s, cap, "failed", driver.failure())

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
        for p, cid in self.active:
            cap = find(s, p, cid)
            if cap is not None:
                times.append(cap.stop + self.registry[cap.type].stop_grace)
        due = [t - now for t in times if t is not None]
        return max(0.0, min([MAX_SLEEP, *due]))

    # --- transitions --------------------------------------------------------------------------------------
    def _begin(self, s: Session, cap: Capture, now: float) -> None:
        if cap.stop <= now:
            self._set_final(s, cap, "failed", "the daemon was not running during the capture window")
            return
        if now - cap.start > 2:
            cap.reason = outcome.join(cap.reason, f"started {now - cap.start:.0f} s late (the daemon was not running)")
        self._launch(s, cap)

    def _make_dir(self, cap: Capture) -> Path:
        """The capture's directory, and its project's, with our modes (the capture user must write there)."""
        directory = self.directory(cap)
        for path in (storage.projects_root(self.cfg.data_dir), directory.parent, directory):
            filemodes.secure_dir(self.cfg, path)
        return directory

    def _launch(self, s: Session, cap: Capture) -> None:
        ctype = self.registry[cap.type]
        cap.segments += 1
        directory = self._make_dir(cap)
        ctx = DriverContext(directory, cap.interface, cap.segments, dict(cap.options), self.cfg.capture_buffer_kib,
                            self.cfg.chunk_mb, self.cfg.flow_active_timeout, self.cfg.flow_idle_timeout,
                            int(cap.stop * 1e9), self.cfg.capture_user, start_ns=int(cap.start * 1e9))
        driver = ctype.make_driver(ctx)
        try:
            driver.start()
        except Exception as e:
            self._set_final(s, cap, "failed", str(e))
            log.warning("capture %s failed to start: %s", cap.id, e)
            return
        self.active[outcome.key(cap)] = driver
        cap.state, cap.child_pid = "running", driver.pid
        cap.started_at = cap.started_at or time.time()
        s.commit()
        self._describe(cap)
        log.info("capture %s (%s on %s) running until %s", cap.id, cap.type, cap.interface, outcome.fmt_time(cap.stop))

    def _finish(self, s: Session, cap: Capture, state: str, reason: str = "") -> None:
        driver = self.active.pop(outcome.key(cap), None)
        problems: list[str] = []
        if driver is not None:
            try:
                problems = driver.stop()
            except Exception as e:  # the data may be incomplete or unpublished: say so, and still end it
                log.warning("capture %s: stopping its driver failed: %s", cap.id, e)
                io_state, io_reason = outcome.io_failure(e)
                state, reason = outcome.worse(state, io_state), outcome.join(reason, io_reason)
        if state == "complete" and cap.reason:  # a gap was recorded earlier (restart, late start, quota)
            state = "truncated"
        self._set_final(s, cap, state, reason, problems)

    def _end(self, s: Session, cap: Capture, state: str, reason: str) -> None:
        """End a capture after an error, whatever state its row and driver are in."""
        cap = find(s, cap.project_id, cap.id) or cap
        if outcome.key(cap) in self.active:
            self._finish(s, cap, state, reason)
        else:
            self._set_final(s, cap, state, reason)

    def _set_final(self, s: Session, cap: Capture, state: str, reason: str = "",
                   problems: Iterable[str] = ()) -> None:
        directory = self.directory(cap)
        ctype = self.registry[cap.type]
        reasons = [reason, *problems]
        if directory.is_dir():
            try:
                ctype.finalize(directory)
                totals = ctype.totals(directory)
                cap.packets, cap.bytes = totals.packets, totals.bytes
                cap.drops_kernel, cap.drops_interface = totals.drops_kernel, totals.drops_interface
                cap.stats = totals.stats
                cap.data_bytes = storage.tree_size(directory)
                reasons += totals.problems
                if state == "failed" and cap.packets:  # it died, but what it captured until then is kept
                    state = "truncated"
            except Exception as e:
                log.warning("capture %s: its data could not be published or counted: %s", cap.id, e)
                io_state, io_reason = outcome.io_failure(e)
                state = outcome.worse(state, io_state)
                reasons.append(io_reason)
        elif cap.started_at is not None:  # it ran, and its data is gone
            state, cap.packets, cap.bytes, cap.data_bytes = "failed", 0, 0, 0
            reasons.append(storage.DIR_REMOVED)
        reasons = [r for r in dict.fromkeys(reasons) if r]
        if state == "complete" and reasons:
            state = "truncated"
        for r in reasons:
            cap.reason = outcome.join(cap.reason, r)
        cap.state, cap.child_pid, cap.finished_at = state, None, time.time()
        s.commit()
        for listener in self.on_final:
            with contextlib.suppress(Exception):
                listener(cap)
        self._describe(cap, final=True)
        log.info("capture %s %s%s", cap.id, state, f": {cap.reason}" if cap.reason else "")

    def _describe(self, cap: Capture, final: bool = False) -> None:
        """The capture's manifest, so its directory can be accounted for without the database. A final state
        records the files it ended with; a later change (data found lost) keeps that list."""
        directory = self.directory(cap)
        if not directory.is_dir():
            return
        try:
            if final:
                files: dict[str, int] | None = manifest.data_files(directory)
            else:
                try:
                    files = manifest.read(directory).get("files")
                except manifest.BadManifest:
                    files = None
            manifest.write(directory, cap, files=files)
        except OSError as e:  # a full or read-only disk: the row still says it all
            log.warning("capture %s: its manifest could not be written: %s", cap.id, e)

    def create(self, s: Session, plan: Plan, project: str) -> Capture:
        """Engine-thread half of a capture request: the checks that depend on other rows, then the insert,
        in one place so two requests cannot both take the last slot or the same id."""
        cid = plan.id
        if cid is not None and find(s, project, cid) is not None:
            if not plan.fresh_id_if_taken:
                raise RequestError(409, f"the id '{cid}' is already used by another capture of your project; "
                                        "choose another")
            cid = None  # the original's call: a fresh id, and the answer's msg says so (see api/captures.py)
        limits.check_new(s, self.cfg, self.active, project, plan.start, plan.stop)
        cap = Capture(id=cid or str(uuid.uuid4()), type=plan.type, project_id=project,
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
        storage.remove(self.directory(cap))
        s.delete(cap)
        s.commit()

    def data_lost(self, s: Session, project: str, capture_id: str, what: str) -> None:
        """A finished capture's data was found missing or damaged (by a retrieve): the row says so from now."""
        cap = find(s, project, capture_id)
        if cap is None or what in cap.reason:
            return
        cap.reason = outcome.join(cap.reason, what)
        if cap.state == "complete":
            cap.state = "truncated"
        directory = self.directory(cap)
        cap.data_bytes = storage.tree_size(directory) if directory.is_dir() else 0
        s.commit()
        self._describe(cap)  # the files it ended with stay listed: a retrieve keeps finding them missing
        log.warning("capture %s of %s: %s", capture_id, project, what)

    # --- limits and recovery ------------------------------------------------------------------------------
    def usage(self, s: Session, project: str | None = None) -> int:
        return limits.usage(s, self.cfg.data_dir, self.active, project)

    def _enforce_limits(self, s: Session) -> None:
        if not self.active:
            return
        for keys, why in limits.over_quota(s, self.cfg, list(self.active)):
            for k in keys:
                cap = find(s, *k)
                if cap is not None and k in self.active:
                    self._guarded(s, cap, lambda c, why=why: self._finish(
                        s, c, "truncated", f"stopped at {outcome.fmt_time(time.time())}: {why}"))

    def _recover(self, s: Session) -> None:
        """Pick up after a previous daemon, which may have been killed with -9, or after a lost database."""
        storage.remove_leftovers(self.cfg.data_dir)
        recovery.adopt_legacy(s, self.cfg)
        recovery.account_for_dirs(s, self.cfg, set())
        now = time.time()
        for cap in s.scalars(select(Capture).where(Capture.state == "running")).all():
            self._guarded(s, cap, lambda c: self._resume(s, c, now))
        s.commit()

    def _resume(self, s: Session, cap: Capture, now: float) -> None:
        directory = self.directory(cap)
        if children.kill_orphan(cap.child_pid, str(directory)):
            outcome.wait_gone(cap.child_pid)
        last = outcome.last_write(directory) or cap.started_at or now
        clean = outcome.stopped_cleanly(cap.reason)
        if cap.stop > now and clean:
            cap.reason = outcome.join(cap.reason, f"restarted at {outcome.fmt_time(now)}: no data for that gap")
            self._launch(s, cap)
        elif cap.stop > now:
            cap.reason = outcome.join(cap.reason, f"the daemon was down from about {outcome.fmt_time(last)} to "
                                           f"{outcome.fmt_time(now)}: no data for that gap")
            if directory.is_dir():
                self.registry[cap.type].finalize(directory)
            self._launch(s, cap)
        elif clean:
            self._set_final(s, cap, "truncated", "the window ended before the device was started again; the data "
                                                 "up to the stop is kept")
        else:
            self._set_final(s, cap, "truncated", f"the daemon stopped at about {outcome.fmt_time(last)}, before "
                                                 "the window ended; the data up to then is kept")
