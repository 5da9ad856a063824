"""How a capture's ending is told: its final state from what went wrong, its reason's words and times, and the
small facts recovery needs about what a previous daemon left."""

from __future__ import annotations

import contextlib
import errno
import os
import time

from opentap.db.models import Capture

STOPPED = "device stopped at"  # a clean shutdown's word in a running capture's reason
Key = tuple[str, str]  # (project, capture id)


def fmt_time(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def key(cap: Capture) -> Key:
    return cap.project_id, cap.id


def io_failure(e: BaseException) -> tuple[str, str]:
    """The final state and reason for an error writing a capture's data: a full disk truncates (what was
    written is good), anything else fails it."""
    when = fmt_time(time.time())
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return "truncated", f"disk full at {when}"
    what = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
    return "failed", f"its data could not be written at {when}: {what}"


_SEVERITY = {"complete": 0, "cancelled": 1, "truncated": 2, "failed": 3}


def worse(a: str, b: str) -> str:
    return a if _SEVERITY.get(a, 0) >= _SEVERITY.get(b, 0) else b


def join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else a or b


def stopped_cleanly(reason: str) -> bool:
    """Whether the reason's last word on the daemon is a clean stop's (the engine's _stop_for_shutdown), not yet
    followed by a restart's: a note may come between (a row restored from its manifest)."""
    for part in reversed(reason.split("; ")):
        if part.startswith(STOPPED):
            return True
        if part.startswith(("restarted at", "the daemon was down")):
            return False
    return False


def last_write(directory: os.PathLike[str]) -> float | None:
    try:
        return max((e.stat().st_mtime for e in os.scandir(directory)), default=None)
    except FileNotFoundError:
        return None


def wait_gone(pid: int | None, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while pid and os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):  # reap it if it is ours; otherwise init will
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
