"""Engine and session set-up; the schema is always brought to the newest migration at start."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import sessionmaker

from opentap import StartupError

from . import shared

MIGRATIONS = Path(__file__).parent / "migrations"


def _json_loads(text: str | bytes) -> Any:
    """JSON columns (options, stats) are read on every capture listing: orjson parses them ~10x faster than
    json. Text orjson refuses (NaN, which json.dumps writes for a float nan) falls back to json."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               json_deserializer=_json_loads)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # WAL: readers never block the scheduler's writes
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, json_deserializer=_json_loads)


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@functools.cache
def head_revision() -> str | None:
    """The newest migration's id (reading the migration scripts is most of a migration's cost: once per process)."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; a database already there is only read. Daemons starting together
    on one PostgreSQL database migrate it once: the lock makes the others wait, and they then find it done."""
    with engine.begin() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head_revision():
            return
        shared.lock_for_migration(conn)
        if MigrationContext.configure(conn).get_current_revision() == head_revision():
            return  # another daemon migrated it while this one waited for the lock
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


class DatabaseUnusable(StartupError):
    """The database cannot be opened or brought up to date: the daemon must not start on it."""


def open_database(url: str) -> tuple[Engine, sessionmaker]:
    """The engine, migrated to the newest schema, and its sessions; DatabaseUnusable in one line otherwise (a
    corrupt SQLite file, a PostgreSQL server that refuses us), never a traceback or a half-started daemon."""
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        engine = make_engine(url)
        migrate(engine)
        with engine.connect() as conn:  # a damaged file can pass the migration check: read a real table
            conn.execute(text("SELECT count(*) FROM captures")).scalar()
    except SQLAlchemyError as e:
        cause = str(getattr(e, "orig", None) or e).splitlines()[0]
        raise DatabaseUnusable(f"the database {shown} cannot be used: {cause}") from None
    return engine, make_sessionmaker(engine)


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    return Path(database) if url.startswith("sqlite") and database not in (None, "", ":memory:") else None


class Health:
    """What /healthz says of the database: one small read, and, for SQLite, whether the file the daemon opened
    is still the one at its path (a file removed or replaced under a running daemon would otherwise go on
    taking writes that nobody will ever see again)."""

    MAX_AGE = 1.0  # seconds an answer is reused: a monitor polling /healthz fast costs the database nothing more

    def __init__(self, url: str, sessions: sessionmaker) -> None:
        self.sessions, self.file = sessions, _sqlite_file(url)
        self.identity = self._identity()
        self._last: tuple[float, str] = (-self.MAX_AGE, "")

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = self.file.stat() if self.file else None
        except OSError:
            return None
        return (st.st_dev, st.st_ino) if st else None

    def check(self) -> str:
        """"ok", or what is wrong, at most MAX_AGE seconds old."""
        at, answer = self._last
        now = time.monotonic()
        if now - at < self.MAX_AGE:
            return answer
        answer = self._check()
        self._last = (now, answer)
        return answer

    def _check(self) -> str:
        if self.file is not None and self._identity() != self.identity:
            return f"the database file {self.file} was removed or replaced while the daemon runs"
        try:
            with self.sessions() as s:
                s.execute(text("SELECT 1 FROM captures LIMIT 1")).first()
        except SQLAlchemyError as e:
            return str(getattr(e, "orig", None) or e).splitlines()[0][:200]
        return "ok"
