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
  stored once.  On SQLite a partial unique index on ``telemetry`` enforces it
  (``INSERT OR IGNORE``).  On PostgreSQL ``telemetry`` is partitioned by time,
  so a unique index there must include ``ts``: (node, ts, dedupe).  A
  redelivery repeats a message's own timestamp, so that index catches it; a
  message without one is stamped on receipt, a redelivery gets another
  ``ts``, and the keys of those readings go to ``telemetry_dedupe``, unique on
  (node, dedupe) whatever the time (:mod:`.sink_postgres`).

PostgreSQL-only objects (partitioning, rollups; :mod:`.partitions`,
:mod:`.rollups`) carry ``info={"postgresql_only": True}``: the migrations build
them only there, and the schema comparison skips them on SQLite.  Partitions
themselves are made at run time, never described here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

JSON_TYPE = sa.JSON().with_variant(JSONB(), "postgresql")
"""JSON documents: JSONB on PostgreSQL (indexable, parsed once), JSON text on SQLite."""

metadata = sa.MetaData()

POSTGRESQL_ONLY = {"postgresql_only": True}
"""``info`` of tables, columns and indexes that exist on PostgreSQL only."""
SQLITE_ONLY = {"sqlite_only": True}
"""``info`` of indexes that exist on SQLite only."""


def dialect_filter(dialect: str) -> Callable[..., bool]:
    """An alembic ``include_object`` hook: this dialect's objects only, and no partitions (made at run time)."""
    skip = "sqlite_only" if dialect == "postgresql" else "postgresql_only"

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table" and reflected and name and is_partition(name):
            return False
        info = getattr(obj if not reflected else compare_to, "info", None) or {}
        return not info.get(skip)

    return include


def is_partition(name: str) -> bool:
    """True for the run-time partitions of the partitioned tables (``telemetry_p20261130``, ``…_default``)."""
    base, _, suffix = name.rpartition("_")
    return base in PARTITIONED and (suffix == "default" or suffix == "legacy" or suffix[:1] == "p")


NODES_FILLFACTOR = 50
"""PostgreSQL keeps half of each ``nodes`` page free, so the writer's frequent ``last_seen`` updates are HOT
(no index entries, the new version on the same page; migration 0007 measured the gain)."""

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
    postgresql_with={"fillfactor": NODES_FILLFACTOR},
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
    sa.Column("epoch", sa.BigInteger, info=POSTGRESQL_ONLY),
    sa.Index("ix_telemetry_node_ts", "node_ref", "ts", info=SQLITE_ONLY),
    sa.Index(
        "uq_telemetry_node_dedupe",
        "node_ref",
        "dedupe",
        unique=True,
        sqlite_where=sa.text("dedupe IS NOT NULL"),
        info=SQLITE_ONLY,
    ),
    sa.Index("uq_telemetry_node_ts_dedupe", "node_ref", "ts", "dedupe", unique=True, info=POSTGRESQL_ONLY),
    sa.Index("ix_telemetry_epoch", "epoch", postgresql_using="brin", info=POSTGRESQL_ONLY),
    postgresql_partition_by="RANGE (ts)",
)
"""One row per message.  PostgreSQL: partitioned by RANGE (ts), one partition a day plus a default one; the
unique index serves the per-node range reads as well (its first two columns); ``epoch`` is the rollup epoch whose
deltas count the row (:mod:`.rollup_epochs`; BRIN: epochs grow as rows are appended)."""

telemetry_dedupe = sa.Table(
    "telemetry_dedupe",
    metadata,
    sa.Column("node_ref", sa.Integer, primary_key=True),
    sa.Column("dedupe", sa.BigInteger, primary_key=True),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("epoch", sa.BigInteger),
    sa.Index("ix_telemetry_dedupe_ts", "ts", postgresql_using="brin"),
    sa.Index("ix_telemetry_dedupe_epoch", "epoch", postgresql_using="brin"),
    info=POSTGRESQL_ONLY,
)
"""PostgreSQL: the (node, dedupe) keys of stored readings that were stamped on receipt, kept as long as their
telemetry (``ts``, for retention).  Before migration 0008 every key went here, with the rollup epoch whose deltas
count its row (``epoch``; since then ``telemetry.epoch``): recovery still reads it for epochs left open then."""

rollup_epochs = sa.Table(
    "rollup_epochs",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("opened", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("owner", sa.Text, nullable=False),
    info=POSTGRESQL_ONLY,
)
"""PostgreSQL: the open rollup epochs, one row each: their deltas are not in ``rollup_pending`` yet
(:mod:`.rollup_epochs`); ``owner`` (host:pid) says which writer holds them."""


def _rollup(name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("node_ref", sa.Integer, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("bucket", sa.Double, primary_key=True),
        sa.Column("min_v", sa.Double, nullable=False),
        sa.Column("max_v", sa.Double, nullable=False),
        sa.Column("sum_v", sa.Double, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        postgresql_partition_by="RANGE (bucket)",
        info=POSTGRESQL_ONLY,
    )


rollup_1m = _rollup("rollup_1m")
"""PostgreSQL: min/max/sum/count of each numeric key per node and minute (``bucket`` = the minute's start)."""
rollup_1h = _rollup("rollup_1h")
"""PostgreSQL: the same per hour."""

rollup_pending = sa.Table(
    "rollup_pending",
    metadata,
    sa.Column("node_ref", sa.Integer, nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("bucket", sa.Double, nullable=False),
    sa.Column("min_v", sa.Double, nullable=False),
    sa.Column("max_v", sa.Double, nullable=False),
    sa.Column("sum_v", sa.Double, nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    info=POSTGRESQL_ONLY,
)
"""PostgreSQL: per-batch minute aggregates the writers appended and the fold has not merged yet (:mod:`.rollups`);
no key and no index, so appending costs a heap insert."""

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

PARTITIONED = ("telemetry", "rollup_1m", "rollup_1h")
"""PostgreSQL tables partitioned by RANGE of their time column."""
