"""The storage schema: one SQLAlchemy Core ``MetaData`` for both dialects.

This is what the code reads and writes; the alembic migrations under
``migrations/versions`` build exactly this (a test compares them), and later
issues (commands, firmware) add their tables here and in a new migration.

Choices that matter:

* Every timestamp is a float of epoch seconds (``DOUBLE PRECISION`` / ``REAL``):
  the hot path never builds ``datetime`` objects and the web API gets numbers.
* Nodes have an integer surrogate key; rows that reference a node carry that
  integer (4 bytes) rather than the 17-character MAC, which keeps the
  telemetry table and its index small.
* ``telemetry`` holds ONE row per message with all its readings as JSON
  (JSONB on PostgreSQL).  It has no primary key and no foreign key: both
  would cost index or trigger work on every insert of the hottest table.  Rows
  of a removed node are deleted explicitly by the writer instead.
* ``telemetry.dedupe`` (an int64 the contract plugin derives from the message,
  or NULL) is unique per node where present, so a redelivered message is
  stored once (``ON CONFLICT DO NOTHING`` / ``INSERT OR IGNORE``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

JSON_TYPE = sa.JSON().with_variant(JSONB(), "postgresql")
"""JSON documents: JSONB on PostgreSQL (indexable, parsed once), JSON text on SQLite."""

metadata = sa.MetaData()

nodes = sa.Table(
    "nodes",
    metadata,
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
    sa.Column("attributes", JSON_TYPE, nullable=False),
    sa.Column("area", sa.Text),
    sa.Column("tags", JSON_TYPE, nullable=False, server_default=sa.text("'[]'")),
)

entities = sa.Table(
    "entities",
    metadata,
    sa.Column("node_ref", sa.Integer, sa.ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("platform", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("unit", sa.Text),
    sa.Column("device_class", sa.Text),
    sa.Column("state_class", sa.Text),
    sa.Column("attributes", JSON_TYPE, nullable=False),
)

telemetry = sa.Table(
    "telemetry",
    metadata,
    sa.Column("node_ref", sa.Integer, nullable=False),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("states", JSON_TYPE, nullable=False),
    sa.Column("dedupe", sa.BigInteger),
    sa.Index("ix_telemetry_node_ts", "node_ref", "ts"),
    sa.Index(
        "uq_telemetry_node_dedupe",
        "node_ref",
        "dedupe",
        unique=True,
        postgresql_where=sa.text("dedupe IS NOT NULL"),
        sqlite_where=sa.text("dedupe IS NOT NULL"),
    ),
)

status_history = sa.Table(
    "status_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("node_ref", sa.Integer, sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("old", sa.Text, nullable=False),
    sa.Column("new", sa.Text, nullable=False),
    sa.Column("reason", sa.Text),
    sa.Index("ix_status_history_node_ts", "node_ref", "ts"),
)

commands = sa.Table(
    "commands",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("node_id", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("params", JSON_TYPE, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("ttl", sa.Double, nullable=False),
    sa.Column("created", sa.Double, nullable=False),
    sa.Column("sender", sa.Text, nullable=False),
    sa.Column("offline_policy", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("updated", sa.Double, nullable=False),
    sa.Column("detail", sa.Text),
    sa.Column("history", JSON_TYPE, nullable=False),
    sa.Index("ix_commands_node_created", "node_id", "created"),
    sa.Index("ix_commands_status", "status"),
)
"""One row per command, rewritten at each status change; ``history`` holds every step (commands are few)."""
