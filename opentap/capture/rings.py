"""The device's rings: which network points have one (the config's `ring_mb`, overridden by an admin's choice
through the API), starting and stopping them to match, and what /capabilities and /rings say of them.

An admin's choice is kept in <data_dir>/rings/settings.json (written whole under a hidden name, then renamed),
beside the rings themselves: the ring and what it should be outlive a restart, and a lost database. A ring that
is turned off keeps the blocks it recorded (they can still be asked for, within its budget) until it is
purged; a point that leaves the config keeps its directory untouched.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path

from opentap import filemodes
from opentap.capture import devicefilter
from opentap.capture.ring import Ring
from opentap.config import Config

log = logging.getLogger("opentap.ring")


class RingSet:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.root = cfg.data_dir / "rings"
        self._lock = threading.RLock()
        self._rings: dict[str, Ring] = {}
        self._running: set[str] = set()

    def _settings_path(self) -> Path:
        return self.root / "settings.json"

    def settings(self) -> dict[str, float]:
        try:
            raw = json.loads(self._settings_path().read_text())
        except (OSError, ValueError):
            return {}
        return {k: float(v) for k, v in raw.items() if k in self.cfg.observation_points and isinstance(v, int | float)}

    def wanted(self) -> dict[str, float]:
        """Each network point's ring budget in MiB (0: off): the admin's choice, else the config's."""
        chosen = self.settings()
        return {name: chosen.get(name, p.ring_mb) for name, p in self.cfg.observation_points.items()}

    def _ring(self, name: str, budget_mb: float) -> Ring:
        ring = self._rings.get(name)
        if ring is None or ring.budget_mb != budget_mb:
            point = self.cfg.observation_points[name]
            ring = Ring(self.root / name, point.interface, budget_mb, buffer_kib=self.cfg.capture_buffer_kib,
                        user=self.cfg.capture_user, file_mode=0o640 if self.cfg.data_group else 0o600)
            self._rings[name] = ring
        return ring

    def reconcile(self) -> None:
        """Start the rings that should record and stop those that should not (at start, and after a change)."""
        with self._lock:
            for name, budget in self.wanted().items():
                ring = self._rings.get(name)
                if budget and (name not in self._running or ring is None or ring.budget_mb != budget):
                    if name in self._running and ring is not None:
                        ring.stop()
                    filemodes.secure_dir(self.cfg, self.root)
                    filemodes.secure_dir(self.cfg, self.root / name)
                    self._rings.pop(name, None)
                    ring = self._ring(name, budget)
                    # the device's own API and SSH traffic never enters a ring: other users' tokens travel there
                    ring.bpf = devicefilter.device_filter(self.cfg)
                    ring.start()
                    self._running.add(name)
                    log.info("ring on %s: recording, %g MiB", name, budget)
                elif not budget and name in self._running and ring is not None:
                    ring.stop()
                    self._running.discard(name)
                    log.info("ring on %s: stopped (its blocks are kept)", name)

    def set(self, name: str, budget_mb: float) -> None:
        """An admin's choice for one point (0: off), kept across restarts, applied at once."""
        with self._lock:
            chosen = self.settings() | {name: budget_mb}
            filemodes.secure_dir(self.cfg, self.root)
            hidden = self.root / ".settings.json.tmp"
            hidden.write_text(json.dumps(chosen))
            filemodes.secure_file(self.cfg, hidden)
            os.replace(hidden, self._settings_path())
            self.reconcile()

    def purge(self, name: str) -> None:
        """Turn a ring off and delete every block it holds."""
        with self._lock:
            self.set(name, 0)
            ring = self._rings.pop(name, None)
            if ring is not None:  # a capture still copying from it must not take the deletion for silence
                ring.purged = True
            directory = self.root / name
            if directory.is_dir():
                doomed = directory.with_name(f".deleting-{name}-{time.time_ns()}")
                os.replace(directory, doomed)
                shutil.rmtree(doomed, ignore_errors=True)

    def get(self, name: str) -> Ring | None:
        """The ring of a point: recording, or stopped with blocks kept; None when it has none."""
        with self._lock:
            ring = self._rings.get(name)
            if ring is None and name in self.cfg.observation_points and (self.root / name / "ring.json").exists():
                ring = self._ring(name, self.wanted()[name])  # turned off: its blocks can still be asked for
            return ring

    def since(self, name: str) -> float | None:
        ring = self.get(name)
        return ring.since() if ring is not None else None

    def status(self, name: str) -> dict:
        ring = self.get(name)
        budget = self.wanted().get(name, 0)
        if ring is None:
            return {"ring_mb": budget, "recording": False, "ring_since": None, "bytes": 0, "blocks": 0, "error": None}
        return ring.status() | {"ring_mb": budget}

    def shutdown(self) -> None:
        with self._lock:
            for name in self._running:  # all at once: each waits for its last packets to be written
                self._rings[name].stop(wait=False)
            for name in self._running:
                self._rings[name].join()
            self._running.clear()
