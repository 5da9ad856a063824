"""This device's id: 16 random bytes in <data_dir>/device-id (as 32 hex digits), made at the first start.

The datapath marks its kernel rules with it (a tc cookie), so it must outlive the database: a device that lost
its database, or was given a new one, still knows its own rules on the host and removes those no tap flow
wants, and it never takes another device's (another data dir, another id) for its own. It is not a secret."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

FILE = "device-id"
SIZE = 16  # the most a tc cookie holds


def device_id(data_dir: Path) -> bytes:
    """The id in data_dir, made (atomically, mode 0600) when there is none. A damaged file is an error, not a
    reason to make a new id: with a new one, the rules made under the old one would be another device's."""
    path = data_dir / FILE
    if not path.exists():
        _create(data_dir, path)
    text = path.read_text().strip()
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != SIZE:
        raise ValueError(f"{path} should hold {SIZE * 2} hex digits (this device's id); restore it from a backup, "
                         "or delete it to start as a new device whose old mirrors are then nobody's")
    return value


def _create(data_dir: Path, path: Path) -> None:
    """Write to a private temporary file, then link it into place: a reader never sees a half-written id, and
    two processes starting at once agree on the first one linked (link, unlike rename, never replaces)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = data_dir / f".{FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(SIZE) + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # someone else's came first: theirs it is
            os.link(tmp, path)
    finally:
        tmp.unlink()
    dirfd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(dirfd)  # the link itself survives a crash
    finally:
        os.close(dirfd)
