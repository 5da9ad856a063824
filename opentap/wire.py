"""Numbers and booleans as callers write them on the wire, read strictly.

Python's int() and float() are lenient in ways an API should not be: they accept other scripts' digits
('١٠٠'), underscores ('1_000'), surrounding blanks (' 100'), exponents, 'inf' and 'nan'. A value that two
parsers could read differently (a proxy, a log scanner, the caller's own tooling) is a value to refuse, so
every number that reaches OpenTap as text goes through here: ASCII digits, an optional leading '-', and for
times a '.' fraction."""

from __future__ import annotations

import re
from typing import Any

INTEGER = re.compile(r"-?[0-9]+")  # fullmatch; [0-9] rather than \d, which matches every script's digits
DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
MAX_DIGITS = 30  # far beyond any value we accept; keeps int() away from huge conversions
QUERY_TRUE, QUERY_FALSE = ("true", "1"), ("false", "0")


class WireError(ValueError):
    """The text is not a number (or boolean) in the accepted form; the message says what was wrong."""


def _shown(value: Any) -> str:
    return repr(str(value)[:40])


def integer(value: Any) -> int:
    """A JSON integer (not a boolean, not a float) or its ASCII decimal text."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise WireError(f"must be a whole number (got {_shown(value)})")
    if isinstance(value, int):
        return value
    if len(value) > MAX_DIGITS or not INTEGER.fullmatch(value):
        raise WireError(f"must be a whole number in ASCII digits (got {_shown(value)})")
    return int(value)


def decimal(value: Any) -> float:
    """A JSON number (not a boolean) or ASCII decimal text such as 1700000000 or 1700000000.25."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise WireError(f"must be a number (got {_shown(value)})")
    if isinstance(value, str) and (len(value) > MAX_DIGITS or not DECIMAL.fullmatch(value)):
        raise WireError(f"must be a number in ASCII digits, like 1700000000 or 1700000000.5 (got {_shown(value)})")
    try:
        return float(value)
    except OverflowError:  # a JSON integer with hundreds of digits
        raise WireError(f"is out of range (got {_shown(value)})") from None


def query_boolean(value: Any, yes_no: bool = False) -> bool:
    """A boolean: JSON true/false, or in a query string true/false/1/0 in any case (and yes/no where the
    original OpenTap took them)."""
    if isinstance(value, bool):
        return value
    text = value.lower() if isinstance(value, str) else None
    if text in QUERY_TRUE or (yes_no and text == "yes"):
        return True
    if text in QUERY_FALSE or (yes_no and text == "no"):
        return False
    raise WireError(f"must be true or false (got {_shown(value)})")
