"""captures: the primary key is (project_id, id), so capture ids are unique per project

Revision ID: 0006
Revises: 0005
"""

import warnings

from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # SQLite cannot change a key in place: batch copies the table
        with warnings.catch_warnings():  # SQLAlchemy remarks that the copy's key differs: that is the point
            warnings.simplefilter("ignore")
            with op.batch_alter_table("captures", recreate="always") as batch:
                batch.create_primary_key("pk_captures", ["project_id", "id"])
    else:
        op.drop_constraint("captures_pkey", "captures", type_="primary")
        op.create_primary_key("pk_captures", "captures", ["project_id", "id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("captures", recreate="always") as batch:
            batch.create_primary_key("pk_captures", ["id"])
    else:
        op.drop_constraint("pk_captures", "captures", type_="primary")
        op.create_primary_key("captures_pkey", "captures", ["id"])
