"""The capture engine as the daemon runs it (its own thread, a real database, a config in a directory), on the
in-memory capture type (memcapture.py) instead of tcpdump: for unit tests of scheduling, supervision, recovery,
limits and quotas. It can be restarted (rows left running, as after a crash) and lose its database."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy.engine import make_url

from opentap import config
from opentap.capture.engine import CaptureEngine
from opentap.capture.plan import Plan
from opentap.capture.storage import capture_dir
from opentap.db.models import Capture, find
from opentap.db.session import open_database

from .configs import write_config
from .memcapture import NAME, MemoryCaptures


class EngineRig:
    def __init__(self, directory: Path, **settings: object) -> None:
        self.cfg = config.load(write_config(directory, **settings))
        self.mem = MemoryCaptures()
        self._open()

    def _open(self) -> None:
        self._db, self.sessions = open_database(self.cfg.database_url)
        self.engine = CaptureEngine(self.cfg, self.sessions, self.mem.registry)
        self.engine.start()

    def close(self) -> None:
        self.engine.shutdown()
        self._db.dispose()

    def restart(self, down_for: float = 0.0, lose_database: bool = False) -> None:
        """Stop the engine as a daemon stops (its drivers stopped, running rows left running, as a crash leaves
        them), wait down_for seconds, and start a new one on the same data; return once it has recovered.
        lose_database: the new one starts on a new, empty database."""
        self.close()
        time.sleep(down_for)
        if lose_database:
            database = Path(str(make_url(self.cfg.database_url).database))  # SQLite: the file and its WAL
            for suffix in ("", "-wal", "-shm"):
                database.with_name(database.name + suffix).unlink(missing_ok=True)
        self._open()
        self.engine.call(lambda _s: None)  # commands run after recovery: it is done once this one has run

    def schedule(self, cid: str, start: float, stop: float, project: str = "alice") -> Capture:
        """A memory capture of project over start..stop, as a checked request reaches the engine (RequestError
        when a limit refuses it)."""
        plan = Plan(NAME, self.cfg.observation_points["lo"], start, stop, cid, {}, "")
        return self.engine.call(lambda s: self.engine.create(s, plan, project))

    def capture(self, cid: str, seconds: float, project: str = "alice", after: float = 0.0) -> Capture:
        start = time.time() + after
        return self.schedule(cid, start, start + seconds, project)

    def row(self, cid: str, project: str = "alice") -> Capture | None:
        with self.sessions() as s:
            return find(s, project, cid)

    def wait(self, cid: str, *states: str, project: str = "alice", timeout: float = 10) -> Capture:
        """The capture's row once its state is one of states, and the engine's step that wrote it is over (the
        row is committed before the manifest is written: a command runs only between two steps)."""
        deadline = time.monotonic() + timeout
        while (cap := self.row(cid, project)) is None or cap.state not in states:
            assert time.monotonic() < deadline, f"capture {cid} is {cap and cap.state}, not {states}"
            time.sleep(0.01)
        self.engine.call(lambda _s: None)
        return cap

    def ticked(self, cid: str, ticks: int = 1, timeout: float = 5) -> None:
        """Until the capture's driver has been ticked (and so has written) this many times."""
        deadline = time.monotonic() + timeout
        while self.mem.driver(cid).ticks < ticks:
            assert time.monotonic() < deadline, f"capture {cid}'s driver was not ticked {ticks} times"
            time.sleep(0.01)

    def directory(self, cid: str, project: str = "alice") -> Path:
        return capture_dir(self.cfg.data_dir, project, cid)
