"""Nodes get an area and tags.

Revision ID: 0003
Revises: 0002

Online-safe on both databases: two added columns, one nullable and one with a
constant server default, so neither rewrites the table (SQLite's ``ADD COLUMN``
only changes the schema; PostgreSQL 11+ stores a constant default in the
catalogue) and a hub still running the previous version, which never names
them, keeps writing nodes meanwhile.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("nodes", sa.Column("area", sa.Text, nullable=True))
    op.add_column("nodes", sa.Column("tags", JSON, nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        batch.drop_column("tags")
        batch.drop_column("area")
