"""Where capture data lives: <data_dir>/captures/<id>/. Ids are checked before they touch a path."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class BadId(ValueError):
    pass


def check_id(capture_id: str) -> str:
    # "." and ".." match the character class but would name the parent directories.
    if not ID_RE.fullmatch(capture_id) or capture_id in (".", ".."):  # match() would take "id\n"
        raise BadId("an id must be 1-128 characters of letters, digits, '_', '.', '-' (and not '.' or '..')")
    return capture_id


def captures_root(data_dir: Path) -> Path:
    return data_dir / "captures"


def capture_dir(data_dir: Path, capture_id: str) -> Path:
    root = captures_root(data_dir).resolve()
    path = (root / check_id(capture_id)).resolve()
    if path.parent != root:  # belt and braces: the id check above already forbids this
        raise BadId("an id must not name a path outside the data directory")
    return path


def tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # a chunk renamed or deleted while we walked
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def publish(hidden: Path, final: Path) -> None:
    """Make a finished file visible under its final name: fsync, then an atomic rename."""
    with open(hidden, "rb") as f:
        os.fsync(f.fileno())
    os.replace(hidden, final)
