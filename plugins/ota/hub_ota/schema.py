"""The OTA plugin's own tables (SQLAlchemy), created by the alembic revisions in ``migrations/``.

* ``ota_firmware``: the catalogue, one row per image in the store: which version it is (one version, one
  image), what it is built for, its digests, and who uploaded it when.
* ``ota_links``: download links, one per node and image, by the SHA-256 of their token (the token itself is
  never stored, so a copy of the database opens no link), with their expiry and how far the download got.
* ``ota_rollouts`` and ``ota_rollout_nodes``: each rollout (settings, stage, status, history) and the progress
  of each of its nodes, so a rollout carries on where it was after a restart.
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

rollouts = sa.Table(
    "ota_rollouts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(100)),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("target", sa.JSON, nullable=False),
    sa.Column("stages", sa.JSON, nullable=False),
    sa.Column("settings", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("stage", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("baseline", sa.JSON, nullable=False),
    sa.Column("history", sa.JSON, nullable=False),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("finished_at", sa.Double),
)

rollout_nodes = sa.Table(
    "ota_rollout_nodes",
    metadata,
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
    sa.Index("ix_ota_rollout_nodes_node_id", "node_id"),
)
