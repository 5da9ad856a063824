"""TaaS: ports, tap_services, tap_flows (the columns opentap/taas/attributes.py declares; test_taas_schema
checks that the two agree)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def _common() -> list[sa.Column]:
    return [sa.Column("id", sa.String(36), primary_key=True), sa.Column("project_id", sa.String(255)),
            sa.Column("name", sa.String(255)), sa.Column("description", sa.String(255))]


def upgrade() -> None:
    op.create_table(
        "ports", *_common(),
        sa.Column("admin_state_up", sa.Boolean), sa.Column("port_security_enabled", sa.Boolean),
        sa.Column("device_id", sa.String(255)), sa.Column("device_owner", sa.String(255)),
        sa.Column("binding_host_id", sa.String(255)), sa.Column("binding_profile", sa.JSON),
        sa.Column("created_at", sa.Float, nullable=False))
    op.create_table(
        "tap_services", *_common(),
        sa.Column("port_id", sa.String(36)), sa.Column("status", sa.String(16)), sa.Column("tap_id", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False))
    op.create_table(
        "tap_flows", *_common(),
        sa.Column("tap_service_id", sa.String(36)), sa.Column("source_port", sa.String(36)),
        sa.Column("direction", sa.String(4)), sa.Column("status", sa.String(16)),
        sa.Column("vlan_filter", sa.String(1024)), sa.Column("created_at", sa.Float, nullable=False))
    for table in ("ports", "tap_services", "tap_flows"):
        op.create_index(f"ix_{table}_project_id", table, ["project_id"])


def downgrade() -> None:
    for table in ("tap_flows", "tap_services", "ports"):
        op.drop_table(table)
