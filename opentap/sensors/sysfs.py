"""A number the kernel exposes as a file (hwmon `temp1_input`, a thermal zone's `temp`, an IIO `in_temp_raw`), or
any file holding one number: value = raw * scale + offset.

Which files the daemon reads. The config is the admin's, but the daemon runs as root and a capture hands what it
reads to project members, so a sensor path must not become a way to read what the host keeps from its users. A
path is read only when it is:

- absolute (the daemon's working directory is no place to look for a sensor);
- a regular file, checked on the descriptor that is read (so no swap between check and read): a FIFO would
  block the sampler, a device node (/dev/mem, a disk) could have effects or hand out anything;
- world-readable (the others' read bit): what any local user may read already, so the daemon's root adds
  nothing. Sensor attributes in sysfs are 0444 (or 0644); a root-only file, such as a key or a token, is refused;
- one number of at most 63 bytes: anything else is no value (the row's field is left empty), never the text.

A file outside /sys that is replaced (written to a new name and renamed over the old one, as writers of whole
values should) is opened again: its inode is compared on every read. sysfs files are read afresh at offset 0.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import threading

from .base import SensorError

MAX_BYTES = 64
NUMBER = re.compile(rb"\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]{1,3})?\s*")
SYSFS = "/sys/"


def refusal(st: os.stat_result) -> str | None:
    """Why a file with this status may not be read as a sensor (None: it may)."""
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file (devices, FIFOs and directories are not read as sensors)"
    if not st.st_mode & stat.S_IROTH:
        return ("not world-readable: the daemon runs as root and reads only what any user of this host may read "
                "(sensor attributes are 0444)")
    return None


def check(path: str) -> str | None:
    """Why this path cannot be a sensor now (None: it can)."""
    if not os.path.isabs(path):
        return f"{path}: not an absolute path"
    try:
        st = os.stat(path)
    except OSError as e:
        return f"{path}: {e.strerror}"
    why = refusal(st)
    return f"{path}: {why}" if why else None


def parse(data: bytes) -> float | None:
    if len(data) >= MAX_BYTES or not NUMBER.fullmatch(data):
        return None
    return float(data)


class SysfsSource:
    min_period_ms = 10
    attach_timeout = 0.0

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None
        self._why = ""
        self._follow = not path.startswith(SYSFS)  # a file a program rewrites may be replaced under us
        self._lock = threading.Lock()  # captures sharing this source read it from their own threads

    def _open(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not block the open
        except OSError as e:
            raise SensorError(f"{self.path}: {e.strerror}") from None
        st = os.fstat(fd)
        why = refusal(st)
        if why:
            os.close(fd)
            raise SensorError(f"{self.path}: {why}")
        self._fd, self._ino = fd, (st.st_dev, st.st_ino)

    def open(self) -> None:
        self._open()

    def ready(self) -> bool:
        return True

    def not_ready(self) -> str:
        return ""

    def _replaced(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) != self._ino

    def read(self, at: float) -> float | None:
        with self._lock:
            return self._read()

    def _read(self) -> float | None:
        try:
            if self._fd is not None and self._follow and self._replaced():
                self.close()
            if self._fd is None:
                self._open()
            assert self._fd is not None
            data = os.pread(self._fd, MAX_BYTES, 0)
        except SensorError as e:
            self._why = str(e)
            return None
        except OSError as e:  # a device that went away (ENODEV) or a driver error: open again next time
            self.close()
            self._why = f"{self.path}: {e.strerror}"
            return None
        value = parse(data)
        if value is None:
            self._why = f"{self.path}: not a number ({data[:20]!r})"
        return value

    def why(self) -> str:
        return self._why

    def set_period(self, ms: int) -> None:
        pass

    def warnings(self, period_ms: int) -> list[str]:
        return []

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
