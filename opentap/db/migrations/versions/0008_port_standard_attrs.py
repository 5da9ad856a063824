"""ports.revision_number and ports.updated_at: Neutron's standard attributes that clients read (created_at was
there from 0003); ports made before have revision 1 and were last updated when they were made

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    with op.batch_alter_table("ports") as batch:
        batch.add_column(sa.Column("revision_number", sa.Integer))
        batch.add_column(sa.Column("updated_at", sa.Float))
    op.execute("UPDATE ports SET revision_number = 1, updated_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("ports") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("revision_number")
