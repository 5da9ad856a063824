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


class Server:
    """A throw-away server in a temporary directory, run as the postgres user. Listening on 127.0.0.1, and on the
    addresses given (the underlay's, for test hosts in network namespaces: tests/support/hostlab.py). With a
    password, connections over TCP need it (scram-sha-256, also from 198.18.0.0/15) and the database belongs to
    a role `opentap` with that password; without one, TCP from 127.0.0.1 is trusted and the URL is postgres's."""

    def __init__(self, listen: tuple[str, ...] = (), password: str | None = None) -> None:
        self.listen, self.password = ("127.0.0.1", *listen), password
        self.base = tempfile.mkdtemp(prefix="opentap-pg-")
        shutil.chown(self.base, "postgres", "postgres")
        self.data = os.path.join(self.base, "data")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    def url(self, host: str = "127.0.0.1", database: str = "opentap") -> str:
        user = f"opentap:{self.password}" if self.password else "postgres"
        return f"postgresql+psycopg://{user}@{host}:{self.port}/{database}"

    def _as_postgres(self, *argv: str, timeout: float = 120) -> None:
        env = {**os.environ, **({"PGPASSWORD": self.password} if self.password else {})}
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=timeout,
                       env=env)

    def start(self) -> None:
        if self.password:
            pwfile = os.path.join(self.base, "pw")
            with open(pwfile, "w") as f:
                f.write(self.password + "\n")
            shutil.chown(pwfile, "postgres", "postgres")
            self._as_postgres(_bin("initdb"), "-D", self.data, "--auth-local=trust", "--auth-host=scram-sha-256",
                              f"--pwfile={pwfile}", "-U", "postgres")
            with open(os.path.join(self.data, "pg_hba.conf"), "a") as f:
                f.write("host all all 198.18.0.0/15 scram-sha-256\n")
        else:
            self._as_postgres(_bin("initdb"), "-D", self.data, "--auth=trust", "-U", "postgres")
        self._pg_ctl("start")
        psql = [_bin("psql"), "-h", self.base, "-p", str(self.port), "-U", "postgres", "-v", "ON_ERROR_STOP=1"]
        if self.password:  # over the local socket (trusted) as postgres: the role the daemons log in as
            self._as_postgres(*psql, "-c", f"CREATE ROLE opentap LOGIN PASSWORD '{self.password}'")
            self._as_postgres(*psql, "-c", "CREATE DATABASE opentap OWNER opentap")
        else:
            self._as_postgres(*psql, "-c", "CREATE DATABASE opentap")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        self._as_postgres(_bin("pg_ctl"), "-D", self.data, "-w", "-l", os.path.join(self.base, "log"), action,
                          *extra, "-o", f"-p {self.port} -k {self.base} -h {','.join(self.listen)}")

    def restart(self) -> None:
        """Stop (fast: open connections are closed) and start again."""
        self._pg_ctl("restart", "-m", "fast")

    def create_database(self, name: str) -> str:
        owner = ["OWNER", "opentap"] if self.password else []
        self._as_postgres(_bin("psql"), "-h", self.base, "-p", str(self.port), "-U", "postgres", "-c",
                          " ".join(["CREATE DATABASE", name, *owner]))
        return self.url(database=name)

    def stop(self) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", _bin("pg_ctl") or "pg_ctl", "-D", self.data, "-m", "fast",
                        "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def server() -> Iterator[str]:
    """Yield a SQLAlchemy URL of an empty database on a fresh server; remove it all afterwards."""
    pg = Server()
    try:
        pg.start()
        yield pg.url()
    finally:
        pg.stop()
