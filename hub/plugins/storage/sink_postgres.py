"""Applying a write plan to PostgreSQL over the raw asyncpg connection, in one transaction.

Every statement takes whole columns as arrays (``unnest``), so a plan costs a
handful of round trips however many nodes or rows it holds.  Telemetry goes
in with binary ``COPY`` straight into the (partitioned) table: measured here
that is about 1.5x the server throughput of ``INSERT … SELECT FROM unnest …
ON CONFLICT DO NOTHING`` and half its client CPU.

Redelivered messages: ``telemetry`` is partitioned by time, so its unique index
must include ``ts``: (node_ref, ts, dedupe).  A redelivery repeats the
message's own timestamp, so the index catches it; ``COPY`` cannot skip a
duplicate, so the ``COPY`` runs inside a savepoint, and when the batch holds a
redelivered message (unique violation) the savepoint is rolled back and the
rows go in through ``INSERT … ON CONFLICT DO NOTHING RETURNING``: only those
that came back are counted as stored.  That only happens right after a
reconnect or restart.  A message without a time of its own is stamped on
receipt, and its redelivery gets another ``ts``: the keys of those readings
(:data:`~.batch.ReceivedKey`, rare) go first into ``telemetry_dedupe``, unique
on (node, dedupe), the same way.  Before migration 0008 every key went there
too: a second ``COPY`` into a B-tree keyed by hashes, which cost PostgreSQL
about a third of its ingest CPU.  Two writers storing the same message at once
(two workers, one redelivery) meet on a unique index: the second waits for the
first to commit, then skips it.  Holding several such keys in opposite orders
they deadlock; PostgreSQL aborts one, and the writer retries that batch as it
retries any failed write (keys are not sorted for this: it costs every batch
for a race that needs a redelivery to two workers at once).

The rollup deltas of the rows actually inserted (after that skipping) are
accumulated in memory once the batch commits, and written once a
``rollup_interval`` in an epoch's seal (:mod:`.rollup_epochs`): every row
carries the epoch's id, so the deltas of an epoch lost with its writer are
recovered from the table.  The sink is used by one writer task, but a seal may
also be asked for by the ``storage.fold`` service: a lock keeps the two apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .batch import (
    PreparedRow,
    ReceivedKey,
    Records,
    TelemetryRecord,
    WritePlan,
    WriteResult,
    row_slices,
    telemetry_records,
)
from .rollup_epochs import MAX_GROUPS, RollupEpochs, Turn

_REMOVED_REFS = "(SELECT id FROM nodes WHERE node_id = ANY($1::text[]))"
_DELETE_TELEMETRY = [
    f"DELETE FROM {table} WHERE node_ref IN {_REMOVED_REFS}"
    for table in ("telemetry", "telemetry_dedupe", "rollup_pending", "rollup_1m", "rollup_1h")
]  # rollup_pending before the rollups: the order the fold locks them in, so the two cannot deadlock
_DELETE_NODES = "DELETE FROM nodes WHERE node_id = ANY($1::text[])"  # entities, status_history: ON DELETE CASCADE
_DELETE_ENTITIES = """
DELETE FROM entities USING nodes, unnest($1::text[], $2::text[]) AS u(n, k)
WHERE entities.node_ref = nodes.id AND nodes.node_id = u.n AND entities.key = u.k
"""
_NEWER_STATUS = "(nodes.status_since IS NULL OR EXCLUDED.status_since >= nodes.status_since)"
"""Several processes write node rows (workers, API instances): a status only replaces an older one, so the
row holds the latest decision whoever wrote last, and a process whose cache is behind cannot turn it back."""
_UPSERT_NODES = """
INSERT INTO nodes (node_id, name, description, status, status_reason, status_since, first_seen, last_seen,
                   firmware_version, attributes, area, tags)
SELECT r->>0, r->>1, r->>2, r->>3, r->>4, (r->>5)::float8, (r->>6)::float8, (r->>7)::float8,
       r->>8, (r->>9)::jsonb, r->>10, (r->>11)::jsonb
FROM jsonb_array_elements($1::jsonb) AS r
ON CONFLICT (node_id) DO UPDATE SET
    name = EXCLUDED.name, description = EXCLUDED.description,
    status = CASE WHEN {newer} THEN EXCLUDED.status ELSE nodes.status END,
    status_reason = CASE WHEN {newer} THEN EXCLUDED.status_reason ELSE nodes.status_reason END,
    status_since = CASE WHEN {newer} THEN EXCLUDED.status_since ELSE nodes.status_since END,
    first_seen = COALESCE(nodes.first_seen, EXCLUDED.first_seen), last_seen = GREATEST(nodes.last_seen, EXCLUDED.last_seen),
    firmware_version = EXCLUDED.firmware_version, attributes = EXCLUDED.attributes,
    area = EXCLUDED.area, tags = EXCLUDED.tags
RETURNING id, node_id
""".replace("{newer}", _NEWER_STATUS)
"""Node and entity rows go in as one JSON array of row arrays (``orjson``, in C), not as one array parameter per
column: asyncpg checks every element of a ``text[]`` against ``collections.abc`` classes, and registering a
10,000-node fleet spent 17 % of the hub's samples there (py-spy); the float columns round-trip exactly (shortest
repr in, ``float8`` out)."""
_UPSERT_ENTITIES = """
INSERT INTO entities (node_ref, key, platform, name, unit, device_class, state_class, attributes)
SELECT nodes.id, r->>1, r->>2, r->>3, r->>4, r->>5, r->>6, (r->>7)::jsonb
FROM jsonb_array_elements($1::jsonb) AS r
JOIN nodes ON nodes.node_id = r->>0
ON CONFLICT (node_ref, key) DO UPDATE SET
    platform = EXCLUDED.platform, name = EXCLUDED.name, unit = EXCLUDED.unit, device_class = EXCLUDED.device_class,
    state_class = EXCLUDED.state_class, attributes = EXCLUDED.attributes
"""
_UPDATE_LAST_SEEN = """
UPDATE nodes SET last_seen = u.ls FROM unnest($1::int4[], $2::float8[]) AS u(ref, ls)
WHERE nodes.id = u.ref AND (nodes.last_seen IS NULL OR nodes.last_seen < u.ls)
"""
"""By surrogate id, and only rows it moves forward: joining 2,000 of 10,000 rows on ``node_id`` (text) cost the
server 15 µs a row, on ``id`` 4 µs (measured here); a value that is not newer leaves the row alone (no dead tuple)."""
_INSERT_STATUS = """
INSERT INTO status_history (node_ref, ts, old, new, reason)
SELECT nodes.id, t, o, nw, r
FROM unnest($1::text[], $2::float8[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS u(n, t, o, nw, r, i)
JOIN nodes ON nodes.node_id = u.n
ORDER BY u.i
"""
_INSERT_NEW_KEYS = """
INSERT INTO telemetry_dedupe (node_ref, dedupe, ts)
SELECT * FROM unnest($1::int[], $2::int8[], $3::float8[])
ON CONFLICT DO NOTHING
RETURNING node_ref, dedupe
"""
_INSERT_NEW_TELEMETRY = """
INSERT INTO telemetry (node_ref, ts, states, dedupe, epoch)
SELECT n, t, s::jsonb, d, e FROM unnest($1::int[], $2::float8[], $3::text[], $4::int8[], $5::int8[]) AS u(n, t, s, d, e)
ON CONFLICT DO NOTHING
RETURNING node_ref, ts, dedupe
"""
_TELEMETRY_COLUMNS = ("node_ref", "ts", "states", "dedupe", "epoch")
_KEY_COLUMNS = ("node_ref", "dedupe", "ts")
Inserted = list[tuple[list[TelemetryRecord], list[dict[str, Any] | None] | None]]
"""A batch's inserted records per slice, with their states dicts (None: parse the stored text)."""


class PostgresSink:
    """See the module docstring."""

    def __init__(self, engine: AsyncEngine, *, rollup_window: float, max_groups: int = MAX_GROUPS) -> None:
        self._engine = engine
        self._epochs = RollupEpochs(rollup_window, max_groups)
        self._lock = asyncio.Lock()

    async def write(self, plan: WritePlan, ids: dict[str, int]) -> WriteResult:
        """Apply ``plan`` in one transaction (see :class:`~.batch.Sink`)."""
        epochs = self._epochs
        async with self._lock:
            try:
                async with self._engine.connect() as conn:
                    db = await _driver(conn)
                    async with db.transaction():
                        result, turn, inserted = await _apply(db, plan, ids, epochs)
                if turn is not None:
                    epochs.committed(turn)
                    for records, documents in inserted:
                        epochs.accumulator.add(records, documents)
                        await asyncio.sleep(0)  # a slice a loop turn, as the rows were written
            except BaseException:  # failed, or cancelled with part of a committed batch not yet accumulated
                epochs.abandon()
                raise
        return result

    def seal_after(self) -> float | None:
        """Seconds until the rollup epoch is due to be sealed; None when none is open."""
        return self._epochs.seal_after()

    async def seal(self) -> None:
        """Write the rollup deltas held in memory now (idle, stopping, or before a fold someone asked for)."""
        async with self._lock, self._engine.connect() as conn:
            await self._epochs.seal(await _driver(conn))


async def _driver(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy one (COPY and plain statements without SQLAlchemy's layers)."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection  # type: ignore[return-value]


async def _apply(
    db: asyncpg.Connection, plan: WritePlan, ids: dict[str, int], epochs: RollupEpochs
) -> tuple[WriteResult, Turn | None, Inserted]:
    """The statements of one plan, inside its transaction; the epoch's turn and the rows to accumulate are
    applied by the caller once it has committed."""
    if plan.removed:
        epochs.accumulator.forget({ids[node] for node in plan.removed if node in ids})
        for delete in _DELETE_TELEMETRY:
            await db.execute(delete, plan.removed)
        await db.execute(_DELETE_NODES, plan.removed)
    if plan.removed_entities:
        await db.execute(_DELETE_ENTITIES, *_columns(plan.removed_entities, 2))
    new_ids: dict[str, int] = {}
    if plan.nodes:
        records = await db.fetch(_UPSERT_NODES, _rows_json(plan.nodes))
        new_ids = {record["node_id"]: record["id"] for record in records}
    if plan.entities:
        await db.execute(_UPSERT_ENTITIES, _rows_json(plan.entities))
    if plan.last_seen:
        await _update_last_seen(db, plan.last_seen, ids)
    turn = await epochs.enter(db) if plan.rows else None
    stored, duplicates, orphans, inserted = await _write_telemetry(
        db, plan.rows, ids, new_ids, None if turn is None else turn.epoch
    )
    if plan.status:
        await db.execute(_INSERT_STATUS, *_columns(plan.status, 5))
    return WriteResult(new_ids, stored, duplicates, orphans), turn, inserted


async def _update_last_seen(db: asyncpg.Connection, last_seen: list[tuple[str, float]], ids: dict[str, int]) -> None:
    """Move the nodes' ``last_seen`` forward, addressing rows by surrogate id.

    A node in ``last_seen`` was committed by an earlier batch (a new one is written whole with the node
    rows), so ``ids`` knows it; one the database does not know is skipped, as telemetry's orphans are.
    """
    refs: list[int] = []
    values: list[float] = []
    for node_id, seen in last_seen:
        ref = ids.get(node_id)
        if ref is not None:
            refs.append(ref)
            values.append(seen)
    if refs:
        await db.execute(_UPDATE_LAST_SEEN, refs, values)


async def _write_telemetry(
    db: asyncpg.Connection, rows: list[PreparedRow], ids: dict[str, int], new_ids: dict[str, int], epoch: int | None
) -> tuple[int, int, int, Inserted]:
    """Insert the readings, carrying ``epoch``; returns (stored, duplicates, orphans) and the inserted records,
    whose deltas the epoch accumulates once the transaction commits."""
    stored = duplicates = orphans = 0
    inserted: Inserted = []
    for part in row_slices(rows) if rows else ():  # COPYs per slice: the loop turns between
        records = telemetry_records(part, ids, new_ids, epoch)
        orphans += records.orphans
        kept = await _insert_telemetry(db, records)
        stored += len(kept)
        duplicates += len(records.rows) - len(kept)
        # The states dicts line up with the records unless redelivered copies were skipped (rare): then parse.
        inserted.append((kept, records.documents if kept is records.rows else None))
    return stored, duplicates, orphans, inserted


async def _insert_telemetry(db: asyncpg.Connection, records: Records) -> list[TelemetryRecord]:
    """Insert rows, skipping those stored before (see the module docstring); returns the records inserted."""
    rows = records.rows
    if not rows:
        return rows
    if records.received_keys:
        rows = await _skip_received_copies(db, rows, records.received_keys)
        if not rows:
            return rows
    if not any(record[3] is not None for record in rows):
        await db.copy_records_to_table("telemetry", records=rows, columns=_TELEMETRY_COLUMNS)
        return rows  # no key: nothing the unique index could refuse
    try:
        async with db.transaction():
            await db.copy_records_to_table("telemetry", records=rows, columns=_TELEMETRY_COLUMNS)
    except asyncpg.UniqueViolationError:
        columns = _columns(rows, len(_TELEMETRY_COLUMNS))
        new = [tuple(record) for record in await db.fetch(_INSERT_NEW_TELEMETRY, *columns)]
        return _only_new(rows, new, lambda record: None if record[3] is None else (record[0], record[1], record[3]))
    return rows


async def _skip_received_copies(
    db: asyncpg.Connection, rows: list[TelemetryRecord], keys: list[ReceivedKey]
) -> list[TelemetryRecord]:
    """Record the keys of readings stamped on receipt; returns ``rows`` without the copies of any stored before."""
    try:
        async with db.transaction():
            await db.copy_records_to_table("telemetry_dedupe", records=keys, columns=_KEY_COLUMNS)
    except asyncpg.UniqueViolationError:
        new = [tuple(record) for record in await db.fetch(_INSERT_NEW_KEYS, *_columns(keys, 3))]
        received = {key[:2] for key in keys}
        return _only_new(rows, new, lambda record: key if (key := (record[0], record[3])) in received else None)
    return rows


def _only_new(
    rows: list[TelemetryRecord], new: list[tuple[Any, ...]], key_of: Callable[[TelemetryRecord], tuple[Any, ...] | None]
) -> list[TelemetryRecord]:
    """The rows to store: those whose key was not checked (``key_of`` gives None), and the first row of each key
    the database took as ``new`` (the rest are copies)."""
    fresh = set(new)
    kept = []
    for record in rows:
        key = key_of(record)
        if key is None:
            kept.append(record)
        elif key in fresh:
            fresh.discard(key)
            kept.append(record)
    return kept


def _rows_json(rows: list[Any]) -> str:
    """Rows as one JSON array of arrays, for ``jsonb_array_elements`` (see :data:`_UPSERT_NODES`)."""
    return orjson.dumps(rows).decode()


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows to columns (what ``unnest`` takes); ``width`` keeps an empty list well-formed."""
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]
