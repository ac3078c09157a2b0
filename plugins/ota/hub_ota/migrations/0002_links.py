"""ota_links: per-node, short-lived, single-use download links (their tokens stored hashed).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ota_links",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("rollout_id", sa.String(32)),
        sa.Column("created", sa.Double, nullable=False),
        sa.Column("expires", sa.Double, nullable=False),
        sa.Column("client", sa.String(64)),
        sa.Column("started", sa.Double),
        sa.Column("completed", sa.Double),
    )
    op.create_index("ix_ota_links_expires", "ota_links", ["expires"])
    op.create_index("ix_ota_links_node_id", "ota_links", ["node_id"])


def downgrade() -> None:
    op.drop_table("ota_links")
