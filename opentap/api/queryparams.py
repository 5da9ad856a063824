"""Numbers in query strings (limits, offsets, ports, times), read strictly: a value that is not one, or is out of
its range, is a 400 naming the parameter and what it may be; an absent or empty one takes its default."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from opentap.capture.plan import MAX_UNIX_TIME
from opentap.wire import WireError, decimal, integer

from .errors import ApiError

N = TypeVar("N", int, float)


def bounded(name: str, text: str | None, read: Callable[[str], N], low: N, high: N,
            default: N | None = None, what: str = "") -> N | None:
    if text is None or text == "":
        return default
    try:
        value = read(text)
    except WireError as e:
        raise ApiError(400, f"{name} {e}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be {what}from {low} to {high} (got {text[:40]})")
    return value


def whole(name: str, text: str | None, low: int, high: int, default: int | None = None) -> int | None:
    return bounded(name, text, integer, low, high, default)


def unix_time(name: str, text: str | None) -> float | None:
    return bounded(name, text, decimal, 0.0, float(MAX_UNIX_TIME), what="UNIX seconds ")
