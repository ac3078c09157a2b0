"""What the writer accumulates between flushes (:class:`Batch`) and what it hands a sink to write (:class:`WritePlan`).

A batch collects, in event order, everything the registry announced: new and
changed nodes, new entities, readings, status changes, removals.  Sealing it
turns that into a :class:`WritePlan` synchronously (no ``await``, so the
node snapshots are consistent) and in the order a transaction must apply it:
removals first (nodes, then entities), then node rows (so every later row can
reference them), then entities, ``last_seen``, telemetry and status history.

Each batch owns the future that the durability barrier hands to transports;
see :class:`Batch.barrier`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from math import isfinite
from typing import Any, Protocol

from hub import Node, NodeRegistry

from .jsoncodec import clean_text, dumps, encode

PreparedRow = tuple[str, float, str, int | None, "dict[str, Any] | None", bool]
"""One ``state_reported`` message, validated and its states serialized (:meth:`Batch.add_reading`): node_id, ts, states
JSON, dedupe, the states dict when the JSON reads back as exactly that dict (:func:`.jsoncodec.encode`), else None,
and whether ``ts`` is the time the hub received it (the message carried no usable time of its own: a redelivery of
it gets another ``ts``)."""
NodeRow = tuple[
    str, str, str, str, str | None, float | None, float | None, float | None, str | None, str, str | None, str
]
"""node_id, name, description, status, status_reason, status_since, first_seen, last_seen, firmware, attributes JSON,
area, tags JSON."""
EntityRow = tuple[str, str, str, str, str | None, str | None, str | None, str]
"""node_id, key, platform, name, unit, device_class, state_class, attributes JSON."""
StatusRow = tuple[str, float, str, str, str | None]
"""node_id, ts, old, new, reason."""
TelemetryRecord = tuple[int, float, str, int | None, int | None]
"""A telemetry row as the table takes it: node_ref, ts, states JSON, dedupe, and the rollup epoch whose deltas
count it (PostgreSQL's :mod:`.rollup_epochs`; None on SQLite)."""
ReceivedKey = tuple[int, int, float]
"""The (node_ref, dedupe, ts) of a reading stamped with its receive time: its key is checked on its own
(PostgreSQL's ``telemetry_dedupe``), since a redelivery does not repeat its ``ts``."""

LAST_SEEN_RESOLUTION = 5.0
"""A node's ``last_seen`` is rewritten only once it moved this many seconds (and always at shutdown).

Without this, 1000 nodes publishing every second would cost 1000 row updates a
flush; with it, a crash can leave a restored ``last_seen`` at most this stale.
"""

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1

ROWS_PER_TURN = 5_000
"""Readings given their node ids or encoded for the database in one event-loop turn.

A batch is normally at most ``batch_size`` (5,000) readings, but while a write is slow or the
database is away the next one grows up to ``max_pending`` (100,000).  Worked through in one go,
such a batch held the event loop for ~360 ms of CPU (measured: 225 ms serializing, since done as
each reading arrives, see :meth:`Batch.add_reading`; 43 ms resolving node ids, 94 ms building SQLite's
JSON parameter) and so stalled ingest, HTTP and the WebSocket right when the hub recovers.  In
slices of this size, with a yield in between, no slice takes more than ~15 ms; a normal batch is
one slice, so nothing changes for it.
"""


class Batch:
    """Everything handed to storage since the previous batch was sealed, and the future of its commit."""

    __slots__ = (
        "dirty",
        "entities",
        "force_seen",
        "future",
        "invalid_rows",
        "opened",
        "overflow",
        "removed",
        "removed_entities",
        "removed_rows",
        "rows",
        "seen_due",
        "status",
        "unknown",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.rows: list[PreparedRow] = []
        self.invalid_rows = 0
        """Readings refused by :meth:`add_reading` (counted when the batch commits)."""
        self.unknown: set[str] = set()
        """Nodes of ``rows`` whose stored ``last_seen`` was unknown when a reading of theirs arrived: never written
        by this writer (or written before it was ever heard), so the database may not hold them yet.  Only these
        are checked for an id when the batch is planned: a set of every node in ``rows`` cost a large fleet a
        set of thousands of strings a batch, grown, diffed and freed (``docs/performance.md``, session 13)."""
        self.removed_rows: dict[str, int] = {}
        """Nodes removed while the batch was open → how many rows it held then: their rows before that are dropped
        when it is planned (the rows after it are those of a node registered again)."""
        self.seen_due: set[str] = set()
        """Nodes of ``rows`` whose ``last_seen`` had moved :data:`LAST_SEEN_RESOLUTION` past what the database held
        when a reading of theirs arrived."""
        self.dirty: set[str] = set()
        """Nodes whose whole row must be (re)written: new, updated or status changed."""
        self.entities: dict[tuple[str, str], dict[str, Any]] = {}
        self.removed_entities: set[tuple[str, str]] = set()
        """(node_id, key) of entities to delete; applied before ``entities``, so remove-then-register keeps one."""
        self.status: list[StatusRow] = []
        self.removed: set[str] = set()
        self.force_seen: set[str] = set()
        """Nodes whose ``last_seen`` must be written whatever :data:`LAST_SEEN_RESOLUTION` says (shutdown)."""
        self.opened: float | None = None
        """Monotonic time of the first operation; None while the batch is empty."""
        self.future: asyncio.Future[None] = loop.create_future()
        self.overflow: asyncio.Future[None] | None = None
        """An already failed future for messages refused because the batch was full."""

    def add_reading(
        self, node_id: str, ts: float, states: dict[str, Any], dedupe: int | None, seen: float, persisted: float | None
    ) -> None:
        """One ``state_reported`` message, received at ``seen``; ``persisted`` is the node's stored ``last_seen``.

        The reading is validated and its JSON encoded here, and its node's ``last_seen`` checked, as the
        message arrives rather than when the batch is written: the states dict and its values were made a
        moment ago and are still in the CPU's caches, while by write time a large fleet's thousands of other
        messages have pushed them out (reading them again cost more than the encoding itself).  A reading no
        database could store (non-finite ``ts``, a dedupe key beyond 64 bits) is counted, not kept.
        """
        try:
            if not isfinite(ts) or (
                dedupe is not None and (type(dedupe) is not int or not _I64_MIN <= dedupe <= _I64_MAX)
            ):
                self.invalid_rows += 1
                return
            text, verbatim = encode(states)
        except TypeError:  # a ts that is no number, states that are no dict
            self.invalid_rows += 1
            return
        # ts is seen when the message had no time of its own: a redelivery of it would get another ts.
        self.rows.append((node_id, float(ts), text, dedupe, states if verbatim else None, ts == seen))
        if persisted is None:
            self.unknown.add(node_id)
            self.seen_due.add(node_id)
        elif seen - persisted >= LAST_SEEN_RESOLUTION:
            self.seen_due.add(node_id)

    def barrier(self) -> asyncio.Future[None]:
        """What a transport awaits for the message it just dispatched into this batch.

        Normally the commit future.  Once a reading was refused (the batch was
        full), every later caller gets the failed ``overflow`` future instead, so
        the refused message, and anything dispatched after it, is not acknowledged.
        Failing too often is safe (the broker redelivers, dedupe drops the copy);
        succeeding once too often would lose a message.
        """
        return self.overflow if self.overflow is not None else self.commit_future()

    def commit_future(self) -> asyncio.Future[None]:
        """The future resolved at commit.

        Cancelling a task that awaits a future cancels the future itself, so one
        transport task cancelled at shutdown would fail the barrier of every other
        message in the batch; a cancelled future is therefore replaced for later callers.
        """
        if self.future.cancelled():
            self.future = self.future.get_loop().create_future()
        return self.future

    def forget_node(self, node_id: str) -> None:
        """Drop every pending operation of a node that was just removed (its readings when planned: see
        :attr:`removed_rows`; one pass over the rows however many nodes an operator removes at once)."""
        if self.rows:
            self.removed_rows[node_id] = len(self.rows)
        self.unknown.discard(node_id)
        self.seen_due.discard(node_id)
        self.dirty.discard(node_id)
        self.force_seen.discard(node_id)
        self.entities = {key: value for key, value in self.entities.items() if key[0] != node_id}
        self.removed_entities = {key for key in self.removed_entities if key[0] != node_id}
        self.status = [row for row in self.status if row[0] != node_id]

    def resolve(self) -> None:
        """The batch committed: release everyone waiting on it."""
        if not self.future.done():
            self.future.set_result(None)

    def fail(self, error: BaseException) -> None:
        """The batch will never commit: make waiters raise (and never log it as unretrieved)."""
        if not self.future.done():
            self.future.set_exception(error)
            self.future.exception()


@dataclass(slots=True)
class WritePlan:
    """One transaction's worth of writes, in the order they must be applied."""

    removed: list[str] = field(default_factory=list)
    removed_entities: list[tuple[str, str]] = field(default_factory=list)
    nodes: list[NodeRow] = field(default_factory=list)
    entities: list[EntityRow] = field(default_factory=list)
    last_seen: list[tuple[str, float]] = field(default_factory=list)
    rows: list[PreparedRow] = field(default_factory=list)
    status: list[StatusRow] = field(default_factory=list)
    invalid_rows: int = 0
    """Readings dropped before writing because no database could store them (non-finite ts, bad dedupe)."""


@dataclass(slots=True)
class WriteResult:
    """What a committed plan did."""

    new_ids: dict[str, int]
    """Surrogate ids of the nodes the plan wrote (node_id -> nodes.id)."""
    stored: int
    """Telemetry rows inserted."""
    duplicates: int
    """Telemetry rows skipped because their (node, dedupe) was stored before."""
    orphans: int
    """Telemetry rows skipped because their node is unknown to the database."""


class Sink(Protocol):
    """A dialect's way of applying a plan in one transaction."""

    async def write(self, plan: WritePlan, ids: dict[str, int]) -> WriteResult:
        """Apply ``plan`` atomically; ``ids`` maps node_id to nodes.id for nodes committed earlier."""

    def seal_after(self) -> float | None:
        """Seconds until what the sink holds in memory across batches is due to be written (PostgreSQL's
        rollup deltas); None when it holds nothing."""

    async def seal(self) -> None:
        """Write what the sink holds in memory across batches now."""


def build_plan(
    batch: Batch, registry: NodeRegistry, ids: Mapping[str, int], persisted_seen: Mapping[str, float]
) -> WritePlan:
    """Turn a sealed batch into a plan; synchronous, so every node snapshot is taken at the same instant.

    The readings were prepared as they arrived (:meth:`Batch.add_reading`), and the nodes whose ``last_seen``
    is due were noted then too: a pass over a large fleet's batch here touches every node's objects
    again after thousands of other messages pushed them out of the CPU's caches.
    """
    rows = batch.rows
    if batch.removed_rows:
        cut = batch.removed_rows
        rows = [row for index, row in enumerate(rows) if index >= cut.get(row[0], 0)]
    plan = WritePlan(
        removed=sorted(batch.removed),
        removed_entities=sorted(batch.removed_entities),
        status=[_clean_status(row) for row in batch.status],
        rows=rows,
        invalid_rows=batch.invalid_rows,
    )
    referenced = batch.unknown
    if batch.entities or batch.status:
        referenced = referenced | {key[0] for key in batch.entities} | {row[0] for row in batch.status}
    upsert = batch.dirty | referenced.difference(ids)  # a set minus a dict: one C loop
    for node_id in sorted(upsert):
        node = registry.get(node_id)
        if node is not None:
            plan.nodes.append(_node_row(node))
    seen = batch.seen_due | batch.force_seen if batch.force_seen else batch.seen_due
    if plan.nodes:
        seen = seen - {row[0] for row in plan.nodes}  # a node row written whole carries its last_seen
    plan.last_seen = _moved_last_seen(seen, batch.force_seen, registry, persisted_seen)
    plan.entities = [_entity_row(node_id, entity) for (node_id, _key), entity in batch.entities.items()]
    return plan


def _moved_last_seen(
    node_ids: set[str], forced: set[str], registry: NodeRegistry, persisted_seen: Mapping[str, float]
) -> list[tuple[str, float]]:
    """The ``last_seen`` values to write for nodes noted as due, and every changed one of ``forced`` (shutdown)."""
    moved: list[tuple[str, float]] = []
    get_node, get_persisted = registry.get, persisted_seen.get
    for node_id in node_ids:
        node = get_node(node_id)
        if node is None or (seen := node.last_seen) is None:
            continue
        if node_id not in forced or seen != get_persisted(node_id):
            moved.append((node_id, seen))
    return moved


@dataclass(slots=True)
class Records:
    """One slice of a plan's readings as the telemetry table takes them (see :func:`telemetry_records`)."""

    rows: list[TelemetryRecord]
    documents: list[dict[str, Any] | None]
    """Each record's states dict, as in :data:`PreparedRow`."""
    received_keys: list[ReceivedKey]
    """The keys of the records with a dedupe key whose ``ts`` is their receive time (rare)."""
    orphans: int
    """Readings dropped because their node has no id (unknown to the database)."""


def telemetry_records(
    rows: list[PreparedRow], ids: dict[str, int], new_ids: Mapping[str, int], epoch: int | None = None
) -> Records:
    """Give each prepared row its node's surrogate id and ``epoch``.

    ``new_ids`` (nodes written earlier in the same transaction) wins over ``ids``:
    a node removed and registered again within one batch has a new id.
    """
    # One merged dict for the batch (only batches that wrote nodes have new_ids): a ChainMap's get is Python, per row.
    lookup = {**ids, **new_ids}.get if new_ids else ids.get
    records: list[TelemetryRecord] = []
    documents: list[dict[str, Any] | None] = []
    received_keys: list[ReceivedKey] = []
    append = records.append
    keep = documents.append
    orphans = 0
    for node_id, ts, states, dedupe, document, received in rows:
        ref = lookup(node_id)
        if ref is None:
            orphans += 1
            continue
        append((ref, ts, states, dedupe, epoch))
        keep(document)
        if received and dedupe is not None:
            received_keys.append((ref, dedupe, ts))
    return Records(records, documents, received_keys, orphans)


def row_slices(rows: list[PreparedRow]) -> list[list[PreparedRow]]:
    """``rows`` in slices of at most :data:`ROWS_PER_TURN` (one slice, the list itself, when it is small)."""
    if len(rows) <= ROWS_PER_TURN:
        return [rows]
    return [rows[start : start + ROWS_PER_TURN] for start in range(0, len(rows), ROWS_PER_TURN)]


def _node_row(node: Node) -> NodeRow:
    return (
        node.node_id,
        clean_text(node.name) or node.node_id,
        clean_text(node.description) or "",
        clean_text(node.status) or "unknown",
        clean_text(node.status_reason),
        node.status_since,
        node.first_seen,
        node.last_seen,
        clean_text(node.firmware_version),
        dumps(node.attributes),
        clean_text(node.area),
        dumps(node.tags),
    )


def _entity_row(node_id: str, entity: dict[str, Any]) -> EntityRow:
    return (
        node_id,
        clean_text(entity["key"]) or "",
        clean_text(entity.get("platform")) or "sensor",
        clean_text(entity.get("name")) or entity["key"],
        clean_text(entity.get("unit")),
        clean_text(entity.get("device_class")),
        clean_text(entity.get("state_class")),
        dumps(entity.get("attributes") or {}),
    )


def _clean_status(row: StatusRow) -> StatusRow:
    node_id, ts, old, new, reason = row
    return node_id, ts, clean_text(old) or "", clean_text(new) or "", clean_text(reason)
