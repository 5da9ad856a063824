"""`opentap migrate`: what an upgrade keeps, checked and said. The config must load with the new version, the
database is brought to the newest schema (the daemon would do it at its next start; the installer does it
now, so a problem shows while the administrator is there), and what was kept is counted."""

from __future__ import annotations

import argparse

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, select

from opentap import config
from opentap.db.models import Capture
from opentap.db.session import make_engine, make_sessionmaker, open_database


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    points, tokens = len(cfg.observation_points), len(cfg.tokens)
    print(f"config {cfg.path}: loads ({points} observation point{'s' * (points != 1)}, "
          f"{tokens} token{'s' * (tokens != 1)})")
    before_engine = make_engine(cfg.database_url)
    try:
        before = _revision(before_engine)
    finally:
        before_engine.dispose()
    engine, _ = open_database(cfg.database_url)  # migrates, or raises DatabaseUnusable in one line
    try:
        after = _revision(engine)
        with make_sessionmaker(engine)() as s:
            states = dict(s.execute(select(Capture.state, func.count()).group_by(Capture.state)).all())
    finally:
        engine.dispose()
    if before is None:
        print(f"database: created (schema {after})")
    elif before != after:
        print(f"database: migrated from schema {before} to {after}")
    else:
        print(f"database: schema {after}, up to date")
    kept = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none"
    print(f"captures kept: {kept}")
    return 0
