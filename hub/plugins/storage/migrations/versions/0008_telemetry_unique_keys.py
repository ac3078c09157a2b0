"""PostgreSQL: redelivered readings are caught by a unique index on ``telemetry``; rows carry their rollup epoch.

Revision ID: 0008
Revises: 0007

SQLite: nothing changes (its ``telemetry`` has a unique (node, dedupe) index of its own).

Every keyed reading used to put its (node, dedupe) key in ``telemetry_dedupe``
as well, carrying the rollup epoch: a second ``COPY`` a batch into a B-tree
whose keys are hashes, so every insert touched a random page.  In the ingest
benchmark (1,000 nodes) PostgreSQL spent 9.5-10.1 µs a message with it and
6.3-7.2 without.  A unique index on the partitioned ``telemetry`` must
include ``ts``; (node_ref, ts, dedupe) catches a redelivery that repeats the
message's own timestamp, and it serves the per-node range reads that
``ix_telemetry_node_ts`` (node_ref, ts) served, so it replaces that index:
one index per row instead of a second table and its index.  Readings the hub
stamped on receipt (a redelivery gets another ``ts``) still put their keys
in ``telemetry_dedupe``.  ``telemetry.epoch`` (nullable, no default: a
catalogue change) carries the rollup epoch of every row, keyed or not, with
a BRIN index for recovery.

Online: :func:`prepare_online` adds the column and builds both indexes on
each partition with ``CREATE INDEX CONCURRENTLY`` while writers go on; the
transaction then declares them on the parent, which adopts the partitions'
indexes instead of building new ones, and drops ``ix_telemetry_node_ts``
(catalogue only).  A process of the previous version still writing goes on
putting every key in ``telemetry_dedupe``; its batch fails on the new index
when it stores a redelivery of a message a new process stored (upgrade every
process).  Its open epochs stay recoverable: recovery reads both epochs.

Downgrade (offline): recovers every open epoch into ``rollup_pending`` (the
previous version could not find the rows that carry it), puts the keys of
every keyed row into ``telemetry_dedupe`` (so the previous version still
recognises a redelivery of a message stored now), builds
``ix_telemetry_node_ts`` again and drops the new indexes and the column.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FOLD_LOCK_KEY = 0x6875625F666F6C64  # "hub_fold", the fold's advisory lock (storage/rollups.py)

_ADD_COLUMN = "ALTER TABLE telemetry ADD COLUMN IF NOT EXISTS epoch bigint"
_UNIQUE = "uq_telemetry_node_ts_dedupe"
_EPOCH = "ix_telemetry_epoch"
_INDEXES = (
    # name on the parent, suffix of each partition's index, kind, columns
    (_UNIQUE, "node_ts_dedupe", "UNIQUE INDEX", "(node_ref, ts, dedupe)"),
    (_EPOCH, "epoch", "INDEX", "USING brin (epoch)"),
)
_PARTITIONS = "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'telemetry'::regclass ORDER BY 1"
_PARTITIONED = "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass('telemetry')"
_INVALID = "SELECT EXISTS (SELECT FROM pg_index WHERE indexrelid = to_regclass(:name) AND NOT indisvalid)"
# Downgrade: every open epoch's stored rows, as deltas (storage/rollup_epochs.py's recovery, all at once, as of
# this revision: rows carry their epoch, and keys written by the version before carry theirs).
_RECOVER_ALL = """
INSERT INTO rollup_pending (node_ref, key, bucket, min_v, max_v, sum_v, n)
SELECT node_ref, key, floor(ts / 60) * 60, min(v), max(v), sum(v), count(v)
FROM (
    SELECT t.node_ref, e.key, t.ts,
           CASE jsonb_typeof(e.value) WHEN 'number' THEN e.value::float8
                                      WHEN 'boolean' THEN e.value::boolean::int::float8 END AS v
    FROM (
        SELECT node_ref, ts, states FROM telemetry WHERE epoch IN (SELECT id FROM rollup_epochs)
        UNION ALL
        SELECT t.node_ref, t.ts, t.states
        FROM telemetry_dedupe AS d
        JOIN telemetry AS t ON t.node_ref = d.node_ref AND t.ts = d.ts AND t.dedupe = d.dedupe
        WHERE d.epoch IN (SELECT id FROM rollup_epochs)
    ) AS t
    CROSS JOIN LATERAL jsonb_each(t.states) AS e
) AS readings
WHERE v IS NOT NULL
GROUP BY 1, 2, 3
"""
_KEYS_BACK = """
INSERT INTO telemetry_dedupe (node_ref, dedupe, ts)
SELECT node_ref, dedupe, ts FROM telemetry WHERE dedupe IS NOT NULL
ON CONFLICT DO NOTHING
"""


def prepare_online(other: sa.Connection) -> None:
    """Add the column and build both indexes on every partition concurrently (autocommit; idempotent).

    Only once ``telemetry`` is partitioned (0004 applied): on an older database the migrations in between
    rebuild the table, and :func:`upgrade` builds the indexes with it.
    """
    if other.dialect.name != "postgresql" or not other.scalar(sa.text(_PARTITIONED)):
        return
    other.execute(sa.text("SET lock_timeout = '10s'"))
    other.execute(sa.text(_ADD_COLUMN))
    for partition in other.scalars(sa.text(_PARTITIONS)).all():
        for _name, suffix, kind, columns in _INDEXES:
            name = f"{partition}_{suffix}"
            if other.scalar(sa.text(_INVALID), {"name": name}):  # an interrupted build leaves an invalid index
                other.execute(sa.text(f"DROP INDEX CONCURRENTLY {name}"))
            other.execute(sa.text(f"CREATE {kind} CONCURRENTLY IF NOT EXISTS {name} ON {partition} {columns}"))
    other.execute(sa.text("RESET lock_timeout"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute(_ADD_COLUMN)
    for name, _suffix, kind, columns in _INDEXES:
        # Adopts each partition's matching index that prepare_online built; builds the missing ones.
        op.execute(f"CREATE {kind} IF NOT EXISTS {name} ON telemetry {columns}")
    op.execute("DROP INDEX IF EXISTS ix_telemetry_node_ts")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"SELECT pg_advisory_xact_lock({FOLD_LOCK_KEY})")
    op.execute("LOCK TABLE rollup_epochs IN ACCESS EXCLUSIVE MODE")
    op.execute(_RECOVER_ALL)
    op.execute("DELETE FROM rollup_epochs")
    op.execute(_KEYS_BACK)
    op.execute("CREATE INDEX ix_telemetry_node_ts ON telemetry (node_ref, ts)")
    op.execute(f"DROP INDEX {_UNIQUE}")
    op.execute(f"DROP INDEX {_EPOCH}")
    op.execute("ALTER TABLE telemetry DROP COLUMN epoch")
