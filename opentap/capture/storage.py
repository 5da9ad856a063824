"""Where capture data lives: <data_dir>/projects/<project>/<id>/. Ids are unique per project, so the project
is part of the path; both are checked before they touch a path.

Deleting renames a directory to a hidden `.deleting-…` name first, so a delete cut short by a crash never
leaves something that looks like a capture; directories nobody can account for are moved to
<data_dir>/quarantine/, never deleted (see retention.py)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
DELETING = ".deleting-"
DIR_REMOVED = "its data directory was removed while it ran; nothing is kept"


class BadId(ValueError):
    pass


def check_id(capture_id: str, what: str = "an id") -> str:
    # "." and ".." match the character class but would name the parent directories.
    if not isinstance(capture_id, str) or not ID_RE.fullmatch(capture_id) or capture_id in (".", ".."):
        # fullmatch: match() would take "id\n"
        raise BadId(f"{what} must be 1-128 characters of letters, digits, '_', '.', '-' (and not '.' or '..')")
    return capture_id


def projects_root(data_dir: Path) -> Path:
    return data_dir / "projects"


def legacy_root(data_dir: Path) -> Path:
    """Before ids were per project: <data_dir>/captures/<id>/ (moved at start, see retention.adopt_legacy)."""
    return data_dir / "captures"


def quarantine_root(data_dir: Path) -> Path:
    return data_dir / "quarantine"


def capture_dir(data_dir: Path, project: str, capture_id: str) -> Path:
    root = projects_root(data_dir).resolve()
    path = (root / check_id(project, "a project id") / check_id(capture_id)).resolve()
    if path.parent.parent != root:  # belt and braces: the id checks above already forbid this
        raise BadId("an id must not name a path outside the data directory")
    return path


def capture_dirs(data_dir: Path) -> Iterator[tuple[str, str, Path]]:
    """(project, id, directory) of every capture directory on disk, hidden ones (being deleted) left out."""
    root = projects_root(data_dir)
    if not root.is_dir():
        return
    for project in sorted(os.scandir(root), key=lambda e: e.name):
        if not project.is_dir(follow_symlinks=False) or not ID_RE.match(project.name):
            continue
        for entry in sorted(os.scandir(project.path), key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False) and ID_RE.match(entry.name) and not entry.name.startswith("."):
                yield project.name, entry.name, Path(entry.path)


def tree_size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # a chunk renamed or deleted while we walked
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def remove(path: Path) -> None:
    """Delete a capture directory: first out of sight (one rename), then its files."""
    if not path.exists():
        return
    doomed = path.with_name(f"{DELETING}{path.name}.{time.time_ns()}")
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def remove_leftovers(data_dir: Path) -> None:
    """Finish deletes that a crash interrupted."""
    root = projects_root(data_dir)
    for doomed in root.glob(f"*/{DELETING}*") if root.is_dir() else ():
        shutil.rmtree(doomed, ignore_errors=True)


def quarantine(data_dir: Path, path: Path) -> Path:
    """Move a directory nobody accounts for out of the way, keeping its data for an administrator."""
    root = quarantine_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{path.parent.name}-{path.name}"
    os.replace(path, target)
    return target


DISK_RESERVE = 4 << 20  # bytes kept free on the data disk (less on a small one, see disk_full)


def disk_full(path: Path) -> bool:
    """Whether the filesystem holding path is (nearly) full. Captures stop a little before the last byte, so
    that what they wrote can still be published and described; tcpdump itself would carry on silently."""
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    reserve = min(DISK_RESERVE, st.f_blocks * st.f_frsize // 50)
    return st.f_bavail * st.f_frsize < reserve


def append_to(directory: Path, hidden: str, final: str, header: str) -> TextIO:
    """A capture's text file opened for its rows, header first when it is new. A resumed capture goes on in its
    file: the one an earlier segment published is hidden again (else this segment's would replace it at the next
    publish), and a row a crash cut short is dropped (else the next row would join it)."""
    path, done = directory / hidden, directory / final
    if done.exists() and not path.exists():
        os.replace(done, path)
    if path.exists():
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - 65536))  # rows are short: the last whole one ends in this tail
            tail = f.read()
            if tail and not tail.endswith(b"\n"):
                f.truncate(size - len(tail) + tail.rfind(b"\n") + 1)
    new = not path.exists() or path.stat().st_size == 0
    out = open(path, "a")  # noqa: SIM115 - the driver closes it when it stops
    if new:
        out.write(header)
        out.flush()
    return out


def text_file(directory: Path, hidden: str, final: str) -> list[Path]:
    """A capture's text file (netflow's flows.csv, linkstats', a sensor capture's): the published one, else the
    one still being written; none before the first row."""
    return [p for p in (directory / final, directory / hidden) if p.exists()][:1]


def publish_text(directory: Path, hidden: str, final: str) -> None:
    if (directory / hidden).exists():
        publish(directory / hidden, directory / final)


def data_rows(files: list[Path]) -> int:
    """The rows of a text file below its header line (0 for no file)."""
    if not files:
        return 0
    with open(files[0], "rb") as f:
        return max(0, sum(1 for _ in f) - 1)


def publish(hidden: Path, final: Path) -> None:
    """Make a finished file visible under its final name: fsync, then an atomic rename."""
    with open(hidden, "rb") as f:
        os.fsync(f.fileno())
    os.replace(hidden, final)
