"""The migrations create exactly the tables the TaaS attribute declarations describe."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from opentap.db.session import make_engine, migrate
from opentap.taas.quota import QUOTAS
from opentap.taas.store import TABLES as RESOURCE_TABLES

TABLES = {**RESOURCE_TABLES, QUOTAS.name: QUOTAS}


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
