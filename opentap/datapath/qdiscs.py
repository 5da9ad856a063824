"""Which clsact qdiscs this device created, so that it removes those, and only those, once nothing uses them.

The kernel keeps no record of who made a qdisc (no cookie, no owner: clsact's handle is always ffff:), so the
driver keeps one: the interfaces, by index and name, on which its own request created the qdisc. A clsact
that was there before (anyone's, or another device's) never enters it. Kept in a file when given one, so
that a restarted daemon still knows what it made; an entry whose index no longer names the same interface
(gone, renamed, or re-created: the qdisc went with the old one) is dropped, never acted on.

What it cannot know: that someone deleted our qdisc and made their own in its place on the same interface.
Such a clsact is still removed only when it holds no filter at all."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from pathlib import Path


def _name(index: int) -> str | None:
    try:
        return socket.if_indextoname(index)
    except OSError:
        return None


class QdiscLedger:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()  # quick and full passes both install and remove
        self._made: dict[int, str] = {}
        if path is not None:
            with contextlib.suppress(OSError, ValueError, AttributeError):  # none yet, or unreadable: know nothing
                self._made = {int(k): str(v) for k, v in json.loads(path.read_text()).items()}
        self._made = {i: n for i, n in self._made.items() if _name(i) == n}

    def made(self, index: int, ifname: str) -> None:
        with self._lock:
            self._made[index] = ifname
            self._save()

    def ours(self, index: int, ifname: str) -> bool:
        """Whether we made the clsact on this interface (and it is still the interface we made it on)."""
        with self._lock:
            return self._made.get(index) == ifname and _name(index) == ifname

    def forget(self, index: int) -> None:
        with self._lock:
            if self._made.pop(index, None) is not None:
                self._save()

    def _save(self) -> None:
        """Whole or not at all (a temporary file renamed over the old one). Not fsynced, and a failed write
        (a full disk) is let go: a lost entry only leaves an empty qdisc behind, as before this ledger existed,
        which is no reason to refuse a mirror."""
        if self.path is None:
            return
        self._made = {i: n for i, n in self._made.items() if _name(i) == n}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps({str(i): n for i, n in sorted(self._made.items())}) + "\n")
            os.replace(tmp, self.path)
