"""Supervised child processes: they die with the daemon, and orphans of a killed daemon are found again."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from pathlib import Path

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # SIGTERM, not SIGKILL: tcpdump then flushes its file and prints its drop counts before it goes.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv: list[str], stderr_path: Path) -> subprocess.Popen:
    """Start argv (never through a shell) with stderr to a file. Must be called from the long-lived
    engine thread: the kernel's parent-death signal follows the thread that forked, not the process."""
    with open(stderr_path, "ab") as err:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                preexec_fn=_die_with_parent, close_fds=True)


def stop(proc: subprocess.Popen, timeout: float = 5.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def kill_orphan(pid: int | None, marker: str) -> bool:
    """Kill a child left by an earlier daemon, but only if its command line still mentions `marker`
    (its capture directory): the pid may have been reused by an unrelated process since."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\x00", b" ").decode(errors="replace")
    except OSError:
        return False
    if marker not in cmdline:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True
