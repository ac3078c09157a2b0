"""ota_firmware: the firmware catalogue, one row per stored image.

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
        "ota_firmware",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("version", sa.String(64), nullable=False, unique=True),
        sa.Column("chip", sa.String(16), nullable=False),
        sa.Column("project", sa.String(64)),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("uploaded_by", sa.String(128), nullable=False),
        sa.Column("uploaded_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ota_firmware")
