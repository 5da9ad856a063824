"""Output for people (tables) and for scripts (json, yaml, csv, value), shared by the CLI's commands."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

FORMATS = ("table", "json", "yaml", "csv", "value")


def cell(value: Any) -> str:
    """A value as a person reads it in a table: strings as they are, nothing for null, JSON otherwise."""
    return value if isinstance(value, str) else "" if value is None else json.dumps(value)


def render(objs: list[dict[str, Any]], fmt: str, columns: list[str]) -> str:
    """Rows (dicts) in one of FORMATS; json keeps every key, the others show `columns`."""
    rows = [[o.get(c) for c in columns] for o in objs]
    text = [[cell(v) for v in row] for row in rows]
    if fmt == "json":
        return json.dumps(objs, indent=2)
    if fmt == "yaml":  # JSON scalars are YAML scalars
        return "\n".join("- " + "\n  ".join(f"{c}: {json.dumps(v)}" for c, v in zip(columns, row, strict=True))
                         for row in rows)
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([columns, *text])
        return buf.getvalue().rstrip("\n")
    if fmt == "value":
        return "\n".join(" ".join(row) for row in text)
    widths = [max(len(s) for s in col) for col in zip(columns, *text, strict=True)]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    lines = [rule, "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |", rule]
    lines += ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |" for row in text]
    return "\n".join([*lines, rule])


def show(obj: dict[str, Any], fmt: str) -> str:
    """One object: a Field/Value table for people."""
    if fmt in ("json", "yaml"):
        return json.dumps(obj, indent=2) if fmt == "json" else "\n".join(f"{k}: {json.dumps(v)}" for k, v in
                                                                           obj.items())
    pairs = [{"Field": k, "Value": cell(v)} for k, v in obj.items()]
    return render(pairs, fmt, ["Field", "Value"])
