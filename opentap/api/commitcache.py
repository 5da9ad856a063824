"""Answers read from the database, kept until the next commit of any session of the device.

The busy read routes (GET /capabilities: the caller's tap services; GET /captures: the whole list) otherwise
pay a database read and a hop to the thread pool and back on every call, which at 200 calls/s was most of
their cost (bench/api_load.py). Every write in the daemon goes through a session of its one sessionmaker and
commits (the engine thread, the TaaS routes, the reconciler), so "nothing has committed since" means "the
rows are as read". The engine commits at least every half second, so an entry lives at most that long: a
cache for bursts of calls, not a second copy of the state. One process is the database's only writer.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker


class CommitCache:
    def __init__(self, sessions: sessionmaker) -> None:
        self._generation = 0
        self._lock = threading.Lock()
        self._values: dict[Hashable, tuple[int, Any]] = {}
        event.listen(sessions, "after_commit", self._committed)

    def generation(self) -> int:
        """Read before the query whose answer is put(): a commit in between makes that answer stale."""
        return self._generation

    def get(self, key: Hashable) -> Any | None:
        hit = self._values.get(key)
        return hit[1] if hit is not None and hit[0] == self._generation else None

    def put(self, key: Hashable, generation: int, value: Any) -> None:
        if generation == self._generation:  # else already stale; and the dict only ever holds current entries
            self._values[key] = (generation, value)

    def _committed(self, _session: Session) -> None:
        # after the commit, not before: a read between the two would store the old rows as current
        with self._lock:  # two commits at once must both move it on
            self._generation += 1
            self._values.clear()  # old entries can never match again; keys come from callers, so bound them
