"""A capture directory describes itself: `manifest.json` holds the capture's row (id, project, type, point,
window, state, counts, reason) and, once it is final, the data files with their sizes.

The database is the truth while it exists; the manifest is what lets a lost or replaced database be rebuilt
from disk (the engine re-imports every manifest it does not know) and what tells a retrieve that data files
went missing after the capture finished. It is written hidden and renamed, so it is never half there."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from opentap.db.models import Capture

NAME = "manifest.json"
VERSION = 1
# the row's columns that describe the capture; child_pid is the running daemon's business only
COLUMNS = ("id", "project_id", "type", "observation_point", "interface", "start", "stop", "state", "options",
           "created_at", "started_at", "finished_at", "packets", "bytes", "drops_kernel", "drops_interface",
           "data_bytes", "segments", "reason", "stats")


class BadManifest(ValueError):
    pass


def data_files(directory: Path) -> dict[str, int]:
    """The published data files and their sizes (hidden files and the manifest itself are not data)."""
    out = {}
    for entry in os.scandir(directory):
        if entry.is_file(follow_symlinks=False) and not entry.name.startswith(".") and entry.name != NAME:
            out[entry.name] = entry.stat(follow_symlinks=False).st_size
    return out


def write(directory: Path, cap: Capture, *, files: dict[str, int] | None = None) -> None:
    """Record the capture's row, and for a final state the data files it ended with (data_files())."""
    doc: dict[str, Any] = {"version": VERSION, **{c: getattr(cap, c) for c in COLUMNS}}
    if files is not None:
        doc["files"] = files
    hidden = directory / f".{NAME}.tmp"
    fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(hidden, directory / NAME)


def read(directory: Path) -> dict[str, Any]:
    try:
        doc = json.loads((directory / NAME).read_text())
    except FileNotFoundError:
        raise BadManifest(f"{directory} has no {NAME}") from None
    except (OSError, ValueError) as e:
        raise BadManifest(f"{directory / NAME} cannot be read: {e}") from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION or any(c not in doc for c in COLUMNS):
        raise BadManifest(f"{directory / NAME} is not an OpenTap capture manifest (version {VERSION})")
    return doc


def to_row(doc: dict[str, Any]) -> Capture:
    return Capture(**{c: doc[c] for c in COLUMNS}, child_pid=None)


def missing_files(directory: Path, doc: dict[str, Any]) -> list[str]:
    """Data files the manifest lists that are gone or shorter than they were when the capture ended (logs and
    statistics files are not data)."""
    listed = {n: size for n, size in (doc.get("files") or {}).items() if not n.endswith((".log", ".json"))}
    try:
        present = data_files(directory)
    except FileNotFoundError:
        present = {}
    return sorted(name for name, size in listed.items() if present.get(name, -1) < size)
