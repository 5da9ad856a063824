"""The small interface every sensor driver implements (a source of one value), and its error."""

from __future__ import annotations

from typing import Protocol


class SensorError(RuntimeError):
    """A sensor cannot be opened or used at all; the message says why (it becomes the capture's reason)."""


class Source(Protocol):
    """One sensor's value. open() never waits for hardware: a source that attaches later (a Phidget) is ready()
    once it has, and the sampler waits at most attach_timeout for it."""

    min_period_ms: int  # the shortest sampling period it can follow
    attach_timeout: float  # seconds ready() may take after open() (0: ready when open() returns)

    def open(self) -> None:
        """Start (subscribe, open the file); raises SensorError when it cannot."""
        ...

    def ready(self) -> bool: ...

    def not_ready(self) -> str:
        """The capture's failure when it never became ready within attach_timeout."""
        ...

    def read(self, at: float) -> float | None:
        """The value now; at is the sample's scheduled time (UNIX seconds). None: no value now (see why())."""
        ...

    def why(self) -> str:
        """Why read() gives no value now (detached, unreadable, ...)."""
        ...

    def set_period(self, ms: int) -> None:
        """The shortest period anyone samples it at (a Phidget then reports at least that often)."""
        ...

    def warnings(self, period_ms: int) -> list[str]:
        """What makes its data at this period less than it seems (values repeating, say)."""
        ...

    def close(self) -> None: ...
