"""Who may read what the device writes: captured packets, flow records, logs and the database are nobody
else's business. Directories are 0700 and files 0600; with `data_group` set, 0750 and 0640 for that group.

The umask covers every file the daemon and its children create (tcpdump's pcaps included); the explicit
modes below tighten what an older version or an administrator left more open."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
from pathlib import Path

from opentap.config import Config


def umask_for(cfg: Config) -> int:
    return 0o027 if cfg.data_group else 0o077


def dir_mode(cfg: Config) -> int:
    return 0o750 if cfg.data_group else 0o700


def owner_ids(cfg: Config) -> tuple[int, int]:
    """(uid, gid) that should own data directories: the capture user's (tcpdump runs as it and must write
    there), else ours; the group is data_group's when one is set. -1 leaves a part unchanged."""
    uid = gid = -1
    if cfg.capture_user:
        user = pwd.getpwnam(cfg.capture_user)
        uid, gid = user.pw_uid, user.pw_gid
    if cfg.data_group:
        gid = grp.getgrnam(cfg.data_group).gr_gid
    return uid, gid


def secure_dir(cfg: Config, path: Path) -> Path:
    """Make (or tighten) a data directory: our mode, the capture user's and data group's ownership."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, dir_mode(cfg))
    uid, gid = owner_ids(cfg)
    if (uid, gid) != (-1, -1) and os.geteuid() == 0:
        os.chown(path, uid, gid)
    return path


def secure_file(cfg: Config, path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.chmod(path, 0o640 if cfg.data_group else 0o600)


def sqlite_files(cfg: Config) -> list[Path]:
    """The SQLite database and its WAL companions, when the database is a local file."""
    prefix = "sqlite:///"
    if not cfg.database_url.startswith(prefix) or cfg.database_url == prefix + ":memory:":
        return []
    db = Path(cfg.database_url[len(prefix):])
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), db.with_name(db.name + "-journal")]


def tighten(cfg: Config) -> None:
    """At start: the data directory, everything in it, and the database as they should be, whatever an earlier
    version (which left pcaps 0644 in 0755 directories) or an administrator made of them."""
    secure_dir(cfg, cfg.data_dir)
    uid, gid = owner_ids(cfg)
    for top, dirs, files in os.walk(cfg.data_dir):
        for name in dirs:
            secure_dir(cfg, Path(top, name))
        for name in files:
            path = Path(top, name)
            secure_file(cfg, path)
            if (uid, gid) != (-1, -1) and os.geteuid() == 0:
                with contextlib.suppress(FileNotFoundError):
                    os.chown(path, uid, gid)
    for path in sqlite_files(cfg):
        secure_file(cfg, path)
