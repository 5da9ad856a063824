"""The migrations create exactly the tables the TaaS attribute declarations describe."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from opentap.db.session import MIGRATIONS, make_engine, migrate
from opentap.taas.agents import HOSTS
from opentap.taas.quota import QUOTAS
from opentap.taas.store import TABLES as RESOURCE_TABLES

TABLES = {**RESOURCE_TABLES, QUOTAS.name: QUOTAS, HOSTS.name: HOSTS}


def test_migrated_schema_matches_the_declarations(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    migrate(engine)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                 TABLES["ports"].metadata)
    assert [d for d in diffs if _table_of(d) in TABLES] == []
    assert set(TABLES) <= set(sa.inspect(engine).get_table_names())


def _table_of(diff: object) -> str | None:
    """The table an alembic difference is about (modify_* differences come wrapped in a list)."""
    item = diff[0] if isinstance(diff, list) else diff
    for part in item[1:]:
        if isinstance(part, sa.Table):
            return part.name
        if isinstance(part, sa.Column | sa.Index) and part.table is not None:
            return part.table.name
        if isinstance(part, str) and part in TABLES:
            return part
    return None


def test_ports_made_before_0008_get_a_revision_and_an_update_time(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
        conn.execute(sa.text("INSERT INTO ports (id, project_id, name, description, binding_profile, created_at) "
                             "VALUES ('p1', 'alice', '', '', '{\"interface\": \"lo\"}', 1700000000.5)"))
    migrate(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT revision_number, updated_at FROM ports")).one()
    assert tuple(row) == (1, 1700000000.5)
