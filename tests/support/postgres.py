"""A throw-away PostgreSQL server for the tests, started from Debian's binaries as the postgres user."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else None


def unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to run PostgreSQL as the postgres user (CI runs as root)"
    if not _bin("initdb") or not shutil.which("runuser"):
        return "PostgreSQL is not installed (test.sh installs it when run as root)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed"
    return None


@contextmanager
def server() -> Iterator[str]:
    """Yield a SQLAlchemy URL of an empty database on a fresh server; remove it all afterwards."""
    base = tempfile.mkdtemp(prefix="opentap-pg-")
    shutil.chown(base, "postgres", "postgres")
    data, sock = os.path.join(base, "data"), base
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def as_postgres(*argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=120)

    try:
        as_postgres(_bin("initdb"), "-D", data, "--auth=trust", "-U", "postgres")
        as_postgres(_bin("pg_ctl"), "-D", data, "-w", "-l", os.path.join(base, "log"), "start",
                    "-o", f"-p {port} -k {sock} -h 127.0.0.1")
        as_postgres(_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "opentap")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/opentap"
    finally:
        subprocess.run(["runuser", "-u", "postgres", "--", _bin("pg_ctl") or "pg_ctl", "-D", data, "-m", "fast",
                        "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
