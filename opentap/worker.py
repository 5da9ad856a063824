"""A named daemon thread that runs until stopped: what the link watcher, the heartbeat and the database listener
have in common. The subclass's _run() loops until self._stop is set (waiting on it, so that stop() is prompt)."""

from __future__ import annotations

import threading


class Worker:
    thread_name = "worker"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        raise NotImplementedError
