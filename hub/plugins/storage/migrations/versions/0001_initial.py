"""Initial schema: nodes, entities, telemetry, status_history.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("node_id", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Text, nullable=False, server_default="unknown"),
        sa.Column("status_reason", sa.Text),
        sa.Column("status_since", sa.Double),
        sa.Column("first_seen", sa.Double),
        sa.Column("last_seen", sa.Double),
        sa.Column("firmware_version", sa.Text),
        sa.Column("attributes", JSON, nullable=False),
    )
    op.create_table(
        "entities",
        sa.Column("node_ref", sa.Integer, sa.ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("unit", sa.Text),
        sa.Column("device_class", sa.Text),
        sa.Column("state_class", sa.Text),
        sa.Column("attributes", JSON, nullable=False),
    )
    op.create_table(
        "telemetry",
        sa.Column("node_ref", sa.Integer, nullable=False),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("states", JSON, nullable=False),
        sa.Column("dedupe", sa.BigInteger),
    )
    op.create_index("ix_telemetry_node_ts", "telemetry", ["node_ref", "ts"])
    op.create_index(
        "uq_telemetry_node_dedupe",
        "telemetry",
        ["node_ref", "dedupe"],
        unique=True,
        postgresql_where=sa.text("dedupe IS NOT NULL"),
        sqlite_where=sa.text("dedupe IS NOT NULL"),
    )
    op.create_table(
        "status_history",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("node_ref", sa.Integer, sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ts", sa.Double, nullable=False),
        sa.Column("old", sa.Text, nullable=False),
        sa.Column("new", sa.Text, nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_index("ix_status_history_node_ts", "status_history", ["node_ref", "ts"])


def downgrade() -> None:
    op.drop_table("status_history")
    op.drop_table("telemetry")
    op.drop_table("entities")
    op.drop_table("nodes")
