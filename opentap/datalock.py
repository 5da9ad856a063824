"""One daemon per data directory: an exclusive lock taken before anything else is touched.

Two daemons on one data directory would each believe they own every running capture: the second one's
recovery stops the first one's tcpdump children, or both run the same capture into the same files. The lock
is an flock on `<data_dir>/lock`, so the kernel drops it when the holder dies, even by kill -9; the file
holds the holder's pid only so the refusal can name it."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from opentap import StartupError

LOCK_NAME = "lock"


class AlreadyRunning(StartupError):
    """Another daemon holds the data directory."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the holder; never waits."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(f"another OpenTap daemon (pid {holder}) is using {self.path.parent}; "
                                 "not starting") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
