"""hosts: every daemon sharing the database registers its host and keeps a heartbeat there (Neutron's agents);
tap_flows.source_side and .service_side: what each end's host says of a flow across hosts

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", sa.String(36), primary_key=True), sa.Column("host", sa.String(255), nullable=False),
        sa.Column("tunnel_ip", sa.String(64)), sa.Column("configurations", sa.JSON),
        sa.Column("created_at", sa.Float, nullable=False), sa.Column("started_at", sa.Float),
        sa.Column("heartbeat_at", sa.Float), sa.UniqueConstraint("host", name="uq_hosts_host"))
    with op.batch_alter_table("tap_flows") as batch:
        batch.add_column(sa.Column("source_side", sa.String(255)))
        batch.add_column(sa.Column("service_side", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("tap_flows") as batch:
        batch.drop_column("service_side")
        batch.drop_column("source_side")
    op.drop_table("hosts")
