"""What daemons that share one database use to work together: the database's clock, PostgreSQL's LISTEN/NOTIFY,
and the advisory lock that lets one of them migrate an empty database while the others wait.

The database's clock, not each machine's: a heartbeat written by one host is judged by another, and their
clocks need not agree; the server's does, with itself. SQLite deployments are one host (DESIGN.md), so there
the local clock is the database's clock anyway."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from opentap.worker import Worker

log = logging.getLogger("opentap.db")
CHANNEL = "opentap_taas"  # one channel; the payload names the hosts concerned ("*": every host)
PAYLOAD_MAX = 7900  # PostgreSQL's NOTIFY payload limit is 8000 bytes
MIGRATION_LOCK = 0x6F70656E746170  # "opentap": the advisory lock key held around a migration
EVERYONE = "*"


def is_postgres(url_or_dialect: str) -> bool:
    return url_or_dialect.startswith("postgresql")


def now(dialect: str) -> sa.ColumnElement[float]:
    """The database server's time, as UNIX seconds (a float), as an SQL expression. clock_timestamp(), not now():
    now() is the transaction's start, which a long pass would make look old."""
    if is_postgres(dialect):
        return sa.func.extract("epoch", sa.func.clock_timestamp())
    return (sa.func.julianday("now") - 2440587.5) * 86400.0


def lock_for_migration(conn: Connection) -> None:
    """Within the migration's transaction: on PostgreSQL wait for any other daemon's migration and hold the lock
    until this transaction ends (pg_advisory_xact_lock). Daemons started together on an empty database thus
    migrate it once: the first one to get the lock creates the tables, the others then find them at the newest
    revision. SQLite serializes writers by itself."""
    if is_postgres(conn.dialect.name):
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def notify(s: Session, hosts: set[str]) -> None:
    """Tell the agents on these hosts to make a quick pass, once this transaction commits (NOTIFY is delivered at
    commit, and not at all on a rollback). Nothing on SQLite: the one host's API pokes its own reconciler."""
    if not hosts or not is_postgres(s.get_bind().dialect.name):
        return
    payload = ",".join(sorted(hosts))
    if len(payload.encode()) > PAYLOAD_MAX:
        payload = EVERYONE
    s.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))


class Listener(Worker):
    """A thread LISTENing on the channel with a connection of its own (psycopg, autocommit), calling
    on_payload(payload) for each notification. When the server goes (a restart), it reconnects with a growing
    pause, and then calls on_payload(EVERYONE) once: notifications sent meanwhile are lost, and a quick pass
    finds what they would have said."""

    thread_name = "db-listen"

    def __init__(self, url: str, on_payload: Callable[[str], None]) -> None:
        # SQLAlchemy's postgresql+psycopg://... as libpq understands it
        self.conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        super().__init__()
        self.on_payload = on_payload
        self.connected = threading.Event()  # set while listening (tests wait for it)

    def _run(self) -> None:
        import psycopg  # here: only PostgreSQL deployments need it

        pause, first = 0.2, True
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    if not first:
                        log.info("listening for TaaS changes again")
                        self.on_payload(EVERYONE)
                    first, pause = False, 0.2
                    while not self._stop.is_set():
                        # a timeout, so that stop() is noticed without a notification to wake us
                        for note in conn.notifies(timeout=0.5):
                            self.on_payload(note.payload)
            except psycopg.Error as e:
                self.connected.clear()
                log.warning("no TaaS change notifications (%s); retrying in %.1f s", str(e).strip()[:200], pause)
                self._stop.wait(pause)
                pause = min(pause * 2, 5.0)
            except Exception:  # the periodic passes still catch every change, only later
                log.exception("TaaS change notifications stopped")
                return
