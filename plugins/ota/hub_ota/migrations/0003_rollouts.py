"""ota_rollouts and ota_rollout_nodes: staged rollouts and the progress of each of their nodes.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ota_rollouts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100)),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("target", sa.JSON, nullable=False),
        sa.Column("stages", sa.JSON, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("baseline", sa.JSON, nullable=False),
        sa.Column("history", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("finished_at", sa.Double),
    )
    op.create_index("ix_ota_rollouts_status", "ota_rollouts", ["status"])
    op.create_table(
        "ota_rollout_nodes",
        sa.Column("rollout_id", sa.String(32), primary_key=True),
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("command_id", sa.String(64)),
        sa.Column("from_version", sa.String(64)),
        sa.Column("deadline", sa.Double),
        sa.Column("retry_at", sa.Double),
        sa.Column("went_away", sa.Boolean, nullable=False),
        sa.Column("started_at", sa.Double),
        sa.Column("finished_at", sa.Double),
        sa.Column("updated_at", sa.Double),
        sa.Column("detail", sa.Text),
        sa.Column("link", sa.String(64)),
    )
    op.create_index("ix_ota_rollout_nodes_node_id", "ota_rollout_nodes", ["node_id"])


def downgrade() -> None:
    op.drop_table("ota_rollout_nodes")
    op.drop_table("ota_rollouts")
