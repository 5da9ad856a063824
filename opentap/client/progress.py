"""A one-line text progress bar over a capture window, redrawn in place on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class WindowBar:
    """How far the wall clock is through [start, stop]; `note` says what the device reports (its state)."""

    width = 30

    def __init__(self, label: str, start: float, stop: float, stream: TextIO | None = None) -> None:
        self.label, self.start, self.stop = label, start, stop
        self.stream = stream if stream is not None else sys.stderr
        self._shown = ""

    def line(self, note: str, now: float) -> str:
        span = max(self.stop - self.start, 1e-9)
        done = min(max((now - self.start) / span, 0.0), 1.0)
        filled = round(done * self.width)
        if now < self.start:
            where = f"starts in {self.start - now:.0f} s"
        else:
            where = f"{min(now, self.stop) - self.start:.0f}/{span:.0f} s"
        return f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done:4.0%} {where} {note}"

    def update(self, note: str, now: float | None = None) -> None:
        text = self.line(note, time.time() if now is None else now)
        if text != self._shown:  # pad over a longer previous line
            self.stream.write("\r" + text.ljust(len(self._shown)))
            self.stream.flush()
            self._shown = text

    def close(self, note: str) -> None:
        self.update(note)
        self.stream.write("\n")
        self.stream.flush()
