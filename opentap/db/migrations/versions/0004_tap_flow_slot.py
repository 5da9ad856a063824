"""tap_flows.slot: the datapath's number for a flow's kernel rules

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    with op.batch_alter_table("tap_flows") as batch:
        batch.add_column(sa.Column("slot", sa.Integer))


def downgrade() -> None:
    with op.batch_alter_table("tap_flows") as batch:
        batch.drop_column("slot")
