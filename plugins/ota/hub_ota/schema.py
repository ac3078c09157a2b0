"""The OTA plugin's own tables (SQLAlchemy), created by the alembic revisions in ``migrations/``.

* ``ota_firmware``: the catalogue, one row per image in the store: which version it is (one version, one
  image), what it is built for, its digests, and who uploaded it when.
* ``ota_links``: download links, one per node and image, by the SHA-256 of their token (the token itself is
  never stored, so a copy of the database opens no link), with their expiry and how far the download got.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

firmware = sa.Table(
    "ota_firmware",
    metadata,
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

links = sa.Table(
    "ota_links",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("node_id", sa.String(64), nullable=False, index=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("purpose", sa.String(16), nullable=False),
    sa.Column("rollout_id", sa.String(32)),
    sa.Column("created", sa.Double, nullable=False),
    sa.Column("expires", sa.Double, nullable=False, index=True),
    sa.Column("client", sa.String(64)),
    sa.Column("started", sa.Double),
    sa.Column("completed", sa.Double),
)
