"""tap_flows.status_reason: why the datapath could not make a flow ACTIVE

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    with op.batch_alter_table("tap_flows") as batch:
        batch.add_column(sa.Column("status_reason", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("tap_flows") as batch:
        batch.drop_column("status_reason")
