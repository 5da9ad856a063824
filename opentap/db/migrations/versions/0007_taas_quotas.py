"""taas_quotas: per-project TaaS quotas set through PUT /v2.0/quotas/{project} (a project without rows has the
config's defaults)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "taas_quotas",
        sa.Column("project_id", sa.String(255), primary_key=True),
        sa.Column("resource", sa.String(32), primary_key=True),
        sa.Column("limit", sa.Integer, nullable=False))


def downgrade() -> None:
    op.drop_table("taas_quotas")
