"""PostgreSQL: rollups from the writer's deltas (``rollup_pending``); ``telemetry.txid`` and its index go.

Revision ID: 0005
Revises: 0004

SQLite: nothing changes (it has no rollups).

Until now the fold found new telemetry rows by their ``txid`` (through
``ix_telemetry_txid``, from a watermark in ``rollup_state``) and aggregated
their JSON itself.  From now on the writer appends each batch's aggregates to
``rollup_pending`` with its rows and the fold merges those (storage/rollups.py),
so the column, its index (one B-tree insert less per row) and the watermark go.

What the previous design had not folded yet is folded once, here, so no row is
lost to the rollups nor counted twice:

1. :func:`prepare_online` (autocommit, before the migration's transaction)
   runs the previous version's fold once, under its advisory lock, while
   writers go on: afterwards only the rows of the last moments are unfolded.
2. The migration's transaction takes the fold's advisory lock (a fold of the
   previous version finishes first, and none starts), then ``LOCK TABLE
   telemetry IN ACCESS EXCLUSIVE MODE``: every transaction that wrote
   telemetry has ended, and writers wait until the commit (milliseconds: only
   the rows since step 1 are read, through the ``txid`` index).  Every row
   with ``txid`` at or above the watermark is aggregated per node, key and
   minute into ``rollup_pending``; the next fold merges it.  Then ``DROP COLUMN
   txid`` (a catalogue change; the index goes with it) and ``rollup_state``.

A process of the previous version still writing after the upgrade stores rows
that no fold will find (it appends no deltas): upgrade them all, as for 0004.

Downgrade folds the pending deltas into the rollups, adds ``txid`` back
(constant default first: no rewrite) and builds its index (offline: the build
scans the table under the lock), with the watermark at the downgrade's own
transaction, so only rows written afterwards are folded the old way.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

FOLD_LOCK_KEY = 0x6875625F666F6C64  # "hub_fold", the fold's advisory lock (storage/rollups.py)

_PENDING = """
CREATE TABLE IF NOT EXISTS rollup_pending (
    node_ref integer NOT NULL,
    key text NOT NULL,
    bucket double precision NOT NULL,
    min_v double precision NOT NULL,
    max_v double precision NOT NULL,
    sum_v double precision NOT NULL,
    n bigint NOT NULL
)
"""
_READINGS = """
    SELECT t.node_ref, e.key, t.ts,
           CASE jsonb_typeof(e.value) WHEN 'number' THEN e.value::float8
                                      WHEN 'boolean' THEN e.value::boolean::int::float8 END AS v
    FROM telemetry AS t CROSS JOIN LATERAL jsonb_each(t.states) AS e
"""
_WATERMARK = "coalesce((SELECT watermark FROM rollup_state WHERE name = 'telemetry'), '3')"
_MERGE = """
ON CONFLICT (node_ref, key, bucket) DO UPDATE SET
    min_v = LEAST(r.min_v, EXCLUDED.min_v), max_v = GREATEST(r.max_v, EXCLUDED.max_v),
    sum_v = r.sum_v + EXCLUDED.sum_v, n = r.n + EXCLUDED.n
"""
# The previous version's fold (revision 0004's design), for step 1: rows below the snapshot's xmin.
_PREVIOUS_FOLD = f"""
WITH horizon AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS x),
minutes AS MATERIALIZED (
    SELECT node_ref, key, floor(ts / 60) * 60 AS bucket, min(v) AS min_v, max(v) AS max_v, sum(v) AS sum_v,
           count(v) AS n
    FROM ({_READINGS} WHERE t.txid >= {_WATERMARK} AND t.txid < (SELECT x FROM horizon)) AS readings
    WHERE v IS NOT NULL
    GROUP BY 1, 2, 3
),
minute_rows AS (
    INSERT INTO rollup_1m AS r (node_ref, key, bucket, min_v, max_v, sum_v, n)
    SELECT node_ref, key, bucket, min_v, max_v, sum_v, n FROM minutes
    {_MERGE}
),
hour_rows AS (
    INSERT INTO rollup_1h AS r (node_ref, key, bucket, min_v, max_v, sum_v, n)
    SELECT node_ref, key, floor(bucket / 3600) * 3600, min(min_v), max(max_v), sum(sum_v), sum(n)
    FROM minutes GROUP BY 1, 2, 3
    {_MERGE}
)
UPDATE rollup_state SET watermark = GREATEST(watermark, (SELECT x FROM horizon)) WHERE name = 'telemetry'
"""
# Step 2, under the lock: everything at or above the watermark, as deltas for the new fold.
_UNFOLDED_TO_PENDING = f"""
INSERT INTO rollup_pending (node_ref, key, bucket, min_v, max_v, sum_v, n)
SELECT node_ref, key, floor(ts / 60) * 60, min(v), max(v), sum(v), count(v)
FROM ({_READINGS} WHERE t.txid >= {_WATERMARK}) AS readings
WHERE v IS NOT NULL
GROUP BY 1, 2, 3
"""
# Downgrade: the new fold, once (storage/rollups.py).
_FOLD_PENDING = f"""
WITH moved AS (DELETE FROM rollup_pending RETURNING node_ref, key, bucket, min_v, max_v, sum_v, n),
minutes AS MATERIALIZED (
    SELECT node_ref, key, bucket, min(min_v) AS min_v, max(max_v) AS max_v, sum(sum_v) AS sum_v, sum(n) AS n
    FROM moved GROUP BY 1, 2, 3
),
minute_rows AS (
    INSERT INTO rollup_1m AS r (node_ref, key, bucket, min_v, max_v, sum_v, n)
    SELECT node_ref, key, bucket, min_v, max_v, sum_v, n FROM minutes
    {_MERGE}
)
INSERT INTO rollup_1h AS r (node_ref, key, bucket, min_v, max_v, sum_v, n)
SELECT node_ref, key, floor(bucket / 3600) * 3600, min(min_v), max(max_v), sum(sum_v), sum(n)
FROM minutes GROUP BY 1, 2, 3
{_MERGE}
"""


def _has_txid(bind: sa.Connection) -> bool:
    return bool(
        bind.scalar(
            sa.text(
                "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass('telemetry') "
                "AND attname = 'txid' AND NOT attisdropped) AND to_regclass('rollup_state') IS NOT NULL"
            )
        )
    )


def prepare_online(other: sa.Connection) -> None:
    """Step 1 on an autocommit connection (see the module docstring); idempotent: a fold can always run again."""
    if other.dialect.name != "postgresql" or not _has_txid(other):
        return
    for statement in ["BEGIN", f"SELECT pg_advisory_xact_lock({FOLD_LOCK_KEY})", _PREVIOUS_FOLD, "COMMIT"]:
        other.execute(sa.text(statement))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("SET LOCAL lock_timeout = '10s'")
    op.execute(_PENDING)
    op.execute(f"SELECT pg_advisory_xact_lock({FOLD_LOCK_KEY})")
    if _has_txid(bind):
        op.execute("LOCK TABLE telemetry IN ACCESS EXCLUSIVE MODE")
        op.execute(_UNFOLDED_TO_PENDING)
        op.execute("ALTER TABLE telemetry DROP COLUMN txid")  # ix_telemetry_txid (and its partitions') with it
    op.execute("DROP TABLE IF EXISTS rollup_state")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(f"SELECT pg_advisory_xact_lock({FOLD_LOCK_KEY})")
    op.execute("LOCK TABLE telemetry IN ACCESS EXCLUSIVE MODE")
    op.execute(_FOLD_PENDING)
    op.execute("ALTER TABLE telemetry ADD COLUMN txid xid8 NOT NULL DEFAULT '0'")
    op.execute("ALTER TABLE telemetry ALTER COLUMN txid SET DEFAULT pg_current_xact_id()")
    op.execute("CREATE INDEX ix_telemetry_txid ON telemetry (txid)")
    op.execute("CREATE TABLE rollup_state (name text PRIMARY KEY, watermark xid8 NOT NULL, folded_at double precision)")
    op.execute("INSERT INTO rollup_state (name, watermark) VALUES ('telemetry', pg_current_xact_id())")
    op.execute("DROP TABLE rollup_pending")
