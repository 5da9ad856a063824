"""Times and durations as people write them, for the client and the CLI: "now", "+10s", "-5m", UNIX seconds,
ISO 8601, datetime objects; "90", "60s", "2m", "1h30m". Times without a zone are UTC (the device's times are)."""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)")
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")

TimeLike = float | int | str | datetime


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration: a bare number is seconds; units ms, s, m, h, d, combinable ("1h30m")."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text)
    else:
        s = str(text).strip().lower()
        if _NUMBER.fullmatch(s):
            seconds = float(s)
        elif s and _PART.sub("", s) == "":
            seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(s))
        else:
            raise ValueError(f"not a duration: {str(text)!r} (say e.g. 90, 60s, 2m, 1h30m)")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a duration: {str(text)!r} (must be a non-negative number of seconds)")
    return seconds


def parse_time(value: TimeLike, now: float | None = None) -> float:
    """UNIX seconds for a point in time: a number (UNIX seconds), a datetime, "now", "+DURATION"/"-DURATION"
    (relative to now), or ISO 8601 ("2024-05-01T12:00:00Z", "2024-05-01 12:00"). now: defaults to the clock,
    pass it to resolve several relative times against the same instant."""
    now = time.time() if now is None else now
    if isinstance(value, datetime):
        return _aware(value).timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    s = str(value).strip()
    if s.lower() == "now":
        return now
    if s.startswith(("+", "-")):  # "+10" is ten seconds from now, not 1970
        return now + (1 if s[0] == "+" else -1) * parse_duration(s[1:])
    if _NUMBER.fullmatch(s):
        return float(s)
    try:
        # fromisoformat takes "Z" and "2024-05-01 12:00" since Python 3.11
        return _aware(datetime.fromisoformat(s)).timestamp()
    except ValueError:
        raise ValueError(f"not a time: {s!r} (say now, +10s, +2m, UNIX seconds or ISO 8601 such as "
                         "2024-05-01T12:00:00Z)") from None


def _aware(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t
