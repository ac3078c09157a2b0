"""http_audit: one row per request that could change something (every method but GET, HEAD, OPTIONS).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "http_audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("username", sa.Text),
        sa.Column("token_id", sa.Text),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("remote", sa.Text, nullable=False),
    )
    op.create_index("ix_http_audit_ts", "http_audit", ["ts"])


def downgrade() -> None:
    op.drop_table("http_audit")
