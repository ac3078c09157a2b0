"""hello_greetings: one row per greeting.

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
        "hello_greetings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("ts", sa.Double, nullable=False),
    )
    op.create_index("ix_hello_greetings_name", "hello_greetings", ["name"])


def downgrade() -> None:
    op.drop_table("hello_greetings")
