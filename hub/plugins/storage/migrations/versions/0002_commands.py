"""Commands with their lifecycle history.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "commands",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("node_id", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("ttl", sa.Double, nullable=False),
        sa.Column("created", sa.Double, nullable=False),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("offline_policy", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("updated", sa.Double, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("history", JSON, nullable=False),
    )
    op.create_index("ix_commands_node_created", "commands", ["node_id", "created"])
    op.create_index("ix_commands_status", "commands", ["status"])


def downgrade() -> None:
    op.drop_table("commands")
