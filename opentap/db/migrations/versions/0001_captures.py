"""captures table

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "captures",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False, index=True),
        sa.Column("observation_point", sa.String(64), nullable=False),
        sa.Column("interface", sa.String(64), nullable=False),
        sa.Column("start", sa.Float, nullable=False),
        sa.Column("stop", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("packets", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("drops_kernel", sa.BigInteger, nullable=False),
        sa.Column("drops_interface", sa.BigInteger, nullable=False),
        sa.Column("data_bytes", sa.BigInteger, nullable=False),
        sa.Column("segments", sa.Integer, nullable=False),
        sa.Column("child_pid", sa.Integer),
        sa.Column("reason", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("captures")
