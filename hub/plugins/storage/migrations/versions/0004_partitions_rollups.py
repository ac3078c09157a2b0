"""PostgreSQL: telemetry partitioned by day, dedupe keys in their own table, 1-minute and 1-hour rollups.

Revision ID: 0004
Revises: 0003

SQLite: nothing changes (the embedded default keeps its plain table).

PostgreSQL, online on a populated table.  The existing table becomes the
partition ``telemetry_legacy`` for all times before a cut (midnight UTC three
days from now), without any step that scans it under a lock writers wait for:

1. In :func:`prepare_online`, which :mod:`storage.migrate` runs before the
   migration's transaction opens (``CREATE INDEX CONCURRENTLY`` would wait for
   that transaction forever), on an autocommit connection: each step is its own
   short transaction, so a hub of the previous version keeps writing between them.

   a. ``ADD COLUMN txid xid8 NOT NULL DEFAULT '0'`` (a constant default: no
      rewrite), then its default becomes ``pg_current_xact_id()``, so every row
      written from then on carries its transaction;
   b. ``CHECK (ts < cut) NOT VALID`` (instant), then ``VALIDATE CONSTRAINT``,
      which scans under SHARE UPDATE EXCLUSIVE: inserts go on;
   c. ``CREATE INDEX CONCURRENTLY`` on ``txid``;
   d. the dedupe keys and the rollups of the rows so far (``txid = 0``) are
      copied and aggregated by plain ``INSERT … SELECT`` statements, reading
      the table while writers go on.

2. In the migration's transaction (brief locks only): rename the table to
   ``telemetry_legacy``, create the partitioned ``telemetry``, ``ATTACH`` the
   old table for ``[MINVALUE, cut)`` — the validated CHECK proves the range, so
   there is no scan — and add the partitioned indexes, which adopt the old
   table's matching ones instead of building new ones.  Rows the previous
   version wrote after step 1d carry real transaction ids: the rollup fold
   takes them (its watermark starts at the first normal transaction id), and
   their dedupe keys are copied here through the ``txid`` index, under the
   lock, so none is missed.  (A process of the previous version still writing
   after the upgrade stores rows without dedupe keys: upgrade them all.)

A new database (where the whole schema is made in this one transaction, so a
second connection cannot see it) or an empty table gets no legacy partition:
the table is replaced by the partitioned one, and the hub makes today's
partitions and those ahead at start.

Downgrade copies everything back into a plain table (offline: it rewrites the data).
"""

import math
import re
import time

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DAY = 86400
CUT_DAYS_AHEAD = 3
"""The old table keeps times up to midnight UTC this many days on (the newest a node may stamp is a day ahead)."""

ROLLUP_COLUMNS = """
    node_ref integer NOT NULL,
    key text NOT NULL,
    bucket double precision NOT NULL,
    min_v double precision NOT NULL,
    max_v double precision NOT NULL,
    sum_v double precision NOT NULL,
    n bigint NOT NULL,
    PRIMARY KEY (node_ref, key, bucket)
"""

_DEDUPE_TABLE = """
CREATE TABLE IF NOT EXISTS telemetry_dedupe (
    node_ref integer NOT NULL,
    dedupe bigint NOT NULL,
    ts double precision NOT NULL,
    PRIMARY KEY (node_ref, dedupe)
)
"""
_ROLLUP_TABLES = [
    f"CREATE TABLE IF NOT EXISTS {name} ({ROLLUP_COLUMNS}) PARTITION BY RANGE (bucket)"
    for name in ("rollup_1m", "rollup_1h")
] + [f"CREATE TABLE IF NOT EXISTS {name}_default PARTITION OF {name} DEFAULT" for name in ("rollup_1m", "rollup_1h")]

# Aggregating the old rows (txid 0) into both rollups; the same merge the fold uses (see storage/rollups.py).
_BACKFILL = """
INSERT INTO {table} AS r (node_ref, key, bucket, min_v, max_v, sum_v, n)
SELECT node_ref, key, floor(ts / {width}) * {width}, min(v), max(v), sum(v), count(v)
FROM (
    SELECT t.node_ref, e.key, t.ts,
           CASE jsonb_typeof(e.value) WHEN 'number' THEN e.value::float8
                                      WHEN 'boolean' THEN e.value::boolean::int::float8 END AS v
    FROM {source} AS t CROSS JOIN LATERAL jsonb_each(t.states) AS e
    WHERE t.txid = '0'
) AS readings
WHERE v IS NOT NULL
GROUP BY 1, 2, 3
ON CONFLICT (node_ref, key, bucket) DO UPDATE SET
    min_v = LEAST(r.min_v, EXCLUDED.min_v), max_v = GREATEST(r.max_v, EXCLUDED.max_v),
    sum_v = r.sum_v + EXCLUDED.sum_v, n = r.n + EXCLUDED.n
"""
_COPY_DEDUPE = """
INSERT INTO telemetry_dedupe (node_ref, dedupe, ts)
SELECT node_ref, dedupe, min(ts) FROM {source} WHERE dedupe IS NOT NULL {where} GROUP BY node_ref, dedupe
ON CONFLICT DO NOTHING
"""


def _cut() -> int:
    return (math.floor(time.time() / DAY) + CUT_DAYS_AHEAD) * DAY


_NEW_TABLES = [
    _DEDUPE_TABLE,
    *_ROLLUP_TABLES,
    "CREATE TABLE IF NOT EXISTS rollup_state (name text PRIMARY KEY, watermark xid8 NOT NULL, folded_at double precision)",
]


def _prepare_steps(cut: int) -> list[str]:
    """Step 1a-b and the new tables (see the module docstring), each idempotent so an interrupted upgrade can rerun."""
    return [
        "ALTER TABLE telemetry ADD COLUMN IF NOT EXISTS txid xid8 NOT NULL DEFAULT '0'",
        "ALTER TABLE telemetry ALTER COLUMN txid SET DEFAULT pg_current_xact_id()",
        "ALTER TABLE telemetry DROP CONSTRAINT IF EXISTS telemetry_legacy_range",
        f"ALTER TABLE telemetry ADD CONSTRAINT telemetry_legacy_range CHECK (ts < {cut}) NOT VALID",
        "ALTER TABLE telemetry VALIDATE CONSTRAINT telemetry_legacy_range",
        *_NEW_TABLES,
    ]


def _backfill() -> list[str]:
    """Step 1d: the dedupe keys and rollups of the rows written before the ``txid`` column (all 0)."""
    return [
        _COPY_DEDUPE.format(source="telemetry", where="AND txid = '0'"),
        *(_BACKFILL.format(table=table, width=width, source="telemetry") for table, width in _WIDTHS),
        "INSERT INTO rollup_state (name, watermark) VALUES ('telemetry', '3')",
    ]


_WIDTHS = (("rollup_1m", 60), ("rollup_1h", 3600))


def prepare_online(other: sa.Connection) -> None:
    """Step 1 on an autocommit connection, before the migration's transaction (PostgreSQL, populated table only).

    :mod:`storage.migrate` calls it under a session advisory lock, so two processes upgrading at once take turns.
    """
    if other.dialect.name != "postgresql":
        return
    if not other.scalar(sa.text("SELECT to_regclass('public.telemetry') IS NOT NULL")):
        return
    if other.scalar(sa.text("SELECT count(*) FROM pg_partitioned_table WHERE partrelid = 'telemetry'::regclass")):
        return  # already partitioned: nothing to prepare
    if not other.scalar(sa.text("SELECT EXISTS (SELECT FROM telemetry)")):
        return  # empty: the migration replaces the table
    cut = _cut()
    other.execute(sa.text("SET lock_timeout = '10s'"))
    for statement in _prepare_steps(cut):
        other.execute(sa.text(statement))
    invalid = other.scalar(
        sa.text(
            "SELECT count(*) FROM pg_index WHERE indexrelid = to_regclass('ix_telemetry_legacy_txid') "
            "AND NOT indisvalid"
        )
    )
    if invalid:  # a CREATE INDEX CONCURRENTLY interrupted earlier leaves an invalid index behind
        other.execute(sa.text("DROP INDEX CONCURRENTLY ix_telemetry_legacy_txid"))
    other.execute(sa.text("CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_telemetry_legacy_txid ON telemetry (txid)"))
    if not other.scalar(sa.text("SELECT count(*) FROM rollup_state")):  # not done by an interrupted run
        for statement in ["BEGIN", *_backfill(), "COMMIT"]:  # all or nothing: a rerun must not count twice
            other.execute(sa.text(statement))
    other.execute(sa.text("RESET lock_timeout"))


def _prepared(bind: sa.Connection) -> int | None:
    """The cut of a completed :func:`prepare_online` (its CHECK validated, its index valid), else None."""
    valid_index = bind.scalar(
        sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('ix_telemetry_legacy_txid')")
    )
    check = bind.execute(
        sa.text(
            "SELECT convalidated, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'telemetry_legacy_range' AND conrelid = 'telemetry'::regclass"
        )
    ).first()
    done = bind.scalar(sa.text("SELECT to_regclass('rollup_state') IS NOT NULL"))
    if not (valid_index and check and check[0] and done):
        return None
    return int(float(re.search(r"<\s*\(?'?([-\d.e+]+)", check[1])[1]))  # CHECK ((ts < (1764806400)::double …


def _create_partitioned() -> None:
    op.execute(
        """
        CREATE TABLE telemetry (
            node_ref integer NOT NULL,
            ts double precision NOT NULL,
            states jsonb NOT NULL,
            dedupe bigint,
            txid xid8 NOT NULL DEFAULT pg_current_xact_id()
        ) PARTITION BY RANGE (ts)
        """
    )


def _create_indexes() -> None:
    op.execute("CREATE TABLE telemetry_default PARTITION OF telemetry DEFAULT")
    op.execute("CREATE INDEX ix_telemetry_node_ts ON telemetry (node_ref, ts)")  # adopts the legacy table's
    op.execute("CREATE INDEX ix_telemetry_txid ON telemetry (txid)")  # adopts ix_telemetry_legacy_txid
    op.execute("CREATE INDEX IF NOT EXISTS ix_telemetry_dedupe_ts ON telemetry_dedupe USING brin (ts)")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    prepared_cut = _prepared(bind)
    cut = prepared_cut or _cut()
    if prepared_cut is None and not bind.scalar(sa.text("SELECT EXISTS (SELECT FROM telemetry)")):
        # A new (or empty) table: no legacy partition, the partitions of today on are made by the hub.
        for statement in _NEW_TABLES:
            op.execute(statement)
        op.execute("INSERT INTO rollup_state (name, watermark) VALUES ('telemetry', '3')")
        op.execute("DROP TABLE telemetry")
        _create_partitioned()
        _create_indexes()
        return
    if prepared_cut is None:  # not prepared (rows arrived since, or run by hand): the same steps, here
        for statement in [*_prepare_steps(cut), "CREATE INDEX ix_telemetry_legacy_txid ON telemetry (txid)"]:
            op.execute(statement)
        for statement in _backfill():
            op.execute(statement)
    # From here writers wait (for milliseconds): the dedupe keys of rows the previous version stored since
    # step 1, then the swap.  A hub of the previous version still writing after this stores no dedupe keys.
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute("LOCK TABLE telemetry IN ACCESS EXCLUSIVE MODE")
    op.execute(_COPY_DEDUPE.format(source="telemetry", where="AND txid >= '3'"))
    op.execute("ALTER TABLE telemetry RENAME TO telemetry_legacy")
    op.execute("ALTER INDEX ix_telemetry_node_ts RENAME TO ix_telemetry_legacy_node_ts")
    op.execute("DROP INDEX uq_telemetry_node_dedupe")
    _create_partitioned()
    op.execute(f"ALTER TABLE telemetry ATTACH PARTITION telemetry_legacy FOR VALUES FROM (MINVALUE) TO ({cut})")
    _create_indexes()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("DROP TABLE rollup_state, rollup_1m, rollup_1h, telemetry_dedupe")
    op.execute(
        """
        CREATE TABLE telemetry_plain (
            node_ref integer NOT NULL,
            ts double precision NOT NULL,
            states jsonb NOT NULL,
            dedupe bigint
        )
        """
    )
    op.execute("INSERT INTO telemetry_plain SELECT node_ref, ts, states, dedupe FROM telemetry")
    op.execute("DROP TABLE telemetry")
    op.execute("ALTER TABLE telemetry_plain RENAME TO telemetry")
    op.execute("CREATE INDEX ix_telemetry_node_ts ON telemetry (node_ref, ts)")
    op.execute("CREATE UNIQUE INDEX uq_telemetry_node_dedupe ON telemetry (node_ref, dedupe) WHERE dedupe IS NOT NULL")
