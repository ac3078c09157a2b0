"""The batch writer: registry events in, one transaction per batch out, commit futures for the durability barrier.

Listeners are plain functions (called inline by the event bus); the hot one,
``state_reported``, prepares the reading (validated, its JSON encoded), appends
it to the open batch and notes whether its node's ``last_seen`` is due, while
the message's objects are still in the CPU's caches (a pass over the batch at
write time, in a 10,000-node fleet, fetched every one of them from memory
again: see ``docs/performance.md``).  One
task writes: it waits until the open batch holds ``batch_size`` messages or
its first operation is ``flush_interval`` old, seals it (a fresh batch opens
at once), builds the write plan synchronously and hands it to the dialect's
sink.  Batches are written strictly one after another, so a batch's commit
implies every earlier batch's.  While idle and when it stops, the task also
has the sink write what it holds across batches (PostgreSQL's rollup deltas,
:mod:`.rollup_epochs`) once that is due.

Failure and memory:

* A failing write is retried with exponential backoff (0.1 s up to 5 s, logged
  rate-limited, counted in ``hub_write_errors_total``) until it commits;
  nothing is dropped.  Meanwhile new operations keep collecting in the open
  batch.
* Readings held in memory (open batch plus the one being written) never
  exceed ``max_pending``.  A reading beyond that is refused: counted in
  ``hub_storage_dropped_rows_total{reason="overload"}``, and its message's
  barrier fails (:class:`~hub.StorageOverloaded`) so the transport does
  not acknowledge it and the broker redelivers it later.  Normally the
  broker's in-flight window stops delivery long before (callers just wait
  for the commit); ``max_pending`` is the safety net for when it does not
  (see :data:`~.config.DEFAULT_MAX_PENDING`).
* At shutdown the writer flushes everything, retrying for up to
  ``shutdown_timeout`` seconds; whatever is still uncommitted then fails its
  futures with :class:`~hub.StorageUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from hub import (
    EVENT_ENTITY_REGISTERED,
    EVENT_ENTITY_REMOVED,
    EVENT_NODE_REGISTERED,
    EVENT_NODE_REMOVED,
    EVENT_NODE_STATUS_CHANGED,
    EVENT_NODE_UPDATED,
    EVENT_STATE_REPORTED,
    EntityRegisteredData,
    EntityRemovedData,
    Event,
    NodeRegisteredData,
    NodeRemovedData,
    NodeStatusChangedData,
    NodeUpdatedData,
    RateLimitedLogger,
    StateReportedData,
    StorageOverloaded,
    StorageUnavailable,
)

from .batch import Batch, Sink, WritePlan, WriteResult, build_plan

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)

SUMMARY_INTERVAL = 30.0
"""Seconds between INFO lines saying how much was stored."""
RETRY_INITIAL, RETRY_MAX = 0.1, 5.0
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class BatchWriter:
    """See the module docstring."""

    def __init__(
        self,
        hub: Hub,
        sink: Sink,
        *,
        ids: dict[str, int],
        persisted_seen: dict[str, float],
        batch_size: int,
        flush_interval: float,
        max_pending: int,
    ) -> None:
        self._hub = hub
        self._registry = hub.registry
        self._sink = sink
        self._ids = ids
        """node_id -> nodes.id of every node committed so far."""
        self._persisted_seen = persisted_seen
        """node_id -> the last_seen value the database holds."""
        self._batch_size = batch_size
        self._interval = flush_interval
        self._max_pending = max_pending
        self._row_cap = max_pending
        """How many readings the open batch may hold: max_pending minus those being written."""
        self._high_water = min(max_pending // 2, 8 * batch_size)
        """Pending readings at which transports are asked to stop reading (see :meth:`backlog`): far enough
        below ``max_pending`` that what is already in their buffers never reaches it."""
        self._caught_up: asyncio.Future[None] | None = None
        """The future handed out by :meth:`backlog` while storage is behind; done once it has caught up."""
        self._loop = asyncio.get_running_loop()
        self._open = Batch(self._loop)
        self._inflight: Batch | None = None
        self._kick = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self._withdraw: Callable[[], None] | None = None
        self._log = RateLimitedLogger(_LOGGER)
        metrics = hub.metrics
        self._m_stored = metrics.counter("stored_rows", "Telemetry rows committed to the database")
        self._m_batch = metrics.histogram("batch_seconds", "Time to write and commit one batch", buckets=BATCH_BUCKETS)
        self._m_depth = metrics.gauge("write_queue_depth", "Readings waiting to be committed")
        self._m_errors = metrics.counter("write_errors", "Failed batch writes (each is retried)")
        self._m_failing = metrics.gauge(
            "storage_failing", "1 while the latest batch write failed and is being retried (health: degraded)"
        )
        self._m_duplicates = metrics.counter(
            "storage_duplicates", "Redelivered readings not stored again (same node and dedupe)"
        )
        dropped = metrics.counter("storage_dropped_rows", "Readings storage did not accept, by reason", ["reason"])
        self._m_overload = dropped.labels("overload")
        self._m_invalid = dropped.labels("invalid")
        self._m_orphan = dropped.labels("unknown_node")
        self._summary_rows = 0
        self._summary_since = time.monotonic()

    # --- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        """Listen to the registry, offer the durability barrier and start the writer task."""
        bus = self._hub.bus
        self._unsubscribe = [
            bus.listen(EVENT_STATE_REPORTED, self._on_state_reported),
            bus.listen(EVENT_NODE_REGISTERED, self._on_node_changed),
            bus.listen(EVENT_NODE_UPDATED, self._on_node_changed),
            bus.listen(EVENT_NODE_REMOVED, self._on_node_removed),
            bus.listen(EVENT_ENTITY_REGISTERED, self._on_entity_registered),
            bus.listen(EVENT_ENTITY_REMOVED, self._on_entity_removed),
            bus.listen(EVENT_NODE_STATUS_CHANGED, self._on_status_changed),
        ]
        self._withdraw = self._hub.durability.set_provider(self.barrier, self.backlog)
        self._task = self._loop.create_task(self._run(), name="storage-writer")

    async def close(self, timeout: float) -> None:
        """Stop listening, commit everything accepted so far (retrying up to ``timeout`` s), then stop."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        batch = self._open
        for node in self._registry:
            if node.last_seen is not None and node.last_seen != self._persisted_seen.get(node.node_id):
                batch.force_seen.add(node.node_id)
        if batch.force_seen:
            self._touch(batch)
        self._closing = True
        self._kick.set()
        try:
            if self._task is not None:
                done, _ = await asyncio.wait({self._task}, timeout=timeout)
                if not done:
                    # Cancelled at its current await, the write can no longer commit.  Not awaited:
                    # a SQLite call blocked in its thread would hold us here until it returns.
                    self._task.cancel()
                    _LOGGER.error(
                        "Storage gave up after %.0f s at shutdown: %d reading(s) not committed; their messages "
                        "were not acknowledged and will be redelivered",
                        timeout,
                        self.pending(),
                    )
        finally:
            error = StorageUnavailable("storage stopped before these readings were committed")
            for pending in (self._inflight, self._open):
                if pending is not None:
                    pending.fail(error)
            if self._withdraw is not None:
                self._withdraw()
            self._release_backlog(always=True)
            self._m_depth.set(0)

    def pending(self) -> int:
        """Readings accepted but not yet committed."""
        return len(self._open.rows) + (len(self._inflight.rows) if self._inflight is not None else 0)

    # --- durability ------------------------------------------------------------------
    def barrier(self) -> asyncio.Future[None] | None:
        """The future a transport awaits before acknowledging what it just dispatched (None: nothing pending).

        The open batch's future if it holds anything (batches commit in order, so
        that covers everything before it too), else the batch being written, else
        nothing is outstanding.
        """
        batch = self._open
        if batch.opened is not None or batch.overflow is not None:
            return batch.barrier()
        inflight = self._inflight
        return None if inflight is None else inflight.commit_future()

    def backlog(self) -> asyncio.Future[None] | None:
        """None while fewer than the high-water mark of readings are pending; else a future done once the
        pending readings fell to half of it (or the writer stopped): transports stop reading until then."""
        caught_up = self._caught_up
        if caught_up is not None:
            return caught_up
        if self.pending() < self._high_water:
            return None
        self._caught_up = caught_up = self._loop.create_future()
        return caught_up

    def _release_backlog(self, *, always: bool = False) -> None:
        """Let transports read again once storage has caught up (``always``: the writer stops or failed)."""
        caught_up = self._caught_up
        if caught_up is not None and (always or self.pending() <= self._high_water // 2):
            self._caught_up = None
            if not caught_up.done():
                caught_up.set_result(None)

    # --- listeners (sync, inline on the event bus) -------------------------------------
    def _on_state_reported(self, event: Event[StateReportedData]) -> None:
        data = event.data
        batch = self._open
        rows = batch.rows
        if len(rows) >= self._row_cap:
            self._refuse(batch)
            return
        node_id = data["node_id"]
        # The registry fires it at the receive time, which drives the node's last_seen.
        batch.add_reading(
            node_id, data["ts"], data["states"], data["dedupe"], event.time_fired, self._persisted_seen.get(node_id)
        )
        count = len(rows)
        if count <= 1:
            self._touch(batch)
        elif count == self._batch_size:
            self._kick.set()

    def _on_node_changed(self, event: Event[NodeRegisteredData] | Event[NodeUpdatedData]) -> None:
        if "origin" in event.data:
            return  # applied from another process's event fan-out: that process wrote it
        batch = self._open
        batch.dirty.add(event.data["node_id"])
        self._touch(batch)

    def _on_node_removed(self, event: Event[NodeRemovedData]) -> None:
        batch = self._open
        node_id = event.data["node_id"]
        batch.forget_node(node_id)
        batch.removed.add(node_id)
        self._touch(batch)

    def _on_entity_registered(self, event: Event[EntityRegisteredData]) -> None:
        if "origin" in event.data:
            return
        batch = self._open
        entity = event.data["entity"]
        batch.entities[(event.data["node_id"], entity["key"])] = entity
        self._touch(batch)

    def _on_entity_removed(self, event: Event[EntityRemovedData]) -> None:
        if "origin" in event.data:
            return
        batch = self._open
        key = (event.data["node_id"], event.data["key"])
        batch.entities.pop(key, None)
        batch.removed_entities.add(key)
        self._touch(batch)

    def _on_status_changed(self, event: Event[NodeStatusChangedData]) -> None:
        data = event.data
        if "origin" in data:
            return
        batch = self._open
        batch.status.append((data["node_id"], data["ts"], data["old"], data["new"], data["reason"]))
        batch.dirty.add(data["node_id"])
        self._touch(batch)

    def _touch(self, batch: Batch) -> None:
        if batch.opened is None:
            batch.opened = time.monotonic()
            self._kick.set()

    def _refuse(self, batch: Batch) -> None:
        if batch.overflow is None:
            overflow: asyncio.Future[None] = self._loop.create_future()
            overflow.set_exception(
                StorageOverloaded(f"storage holds {self._max_pending} uncommitted readings (max_pending)")
            )
            overflow.exception()
            batch.overflow = overflow
        self._m_overload.inc()
        self._log.warning(
            "overload",
            "Storage is %d readings behind (max_pending); refusing new readings until the database catches up",
            self._max_pending,
        )

    # --- the writer task ----------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            batch = self._open
            if batch.opened is None:
                if self._closing:
                    await self._seal()
                    return
                self._kick.clear()
                due = self._sink.seal_after()
                if due is not None and due <= 0:
                    await self._seal()
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(due):
                        await self._kick.wait()
                continue
            if not self._closing and len(batch.rows) < self._batch_size:
                delay = batch.opened + self._interval - time.monotonic()
                if delay > 0:
                    self._kick.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._kick.wait()
                    continue
            try:
                await self._flush()
            except Exception:  # a bug, not a database error (those are retried): keep storing what follows
                _LOGGER.exception("Storage failed to write a batch; its messages will not be acknowledged")
                if self._inflight is not None:
                    self._inflight.fail(StorageUnavailable("storage failed to write this batch"))
                self._inflight = None
                self._row_cap = self._max_pending
                self._release_backlog(always=True)

    async def seal_rollups(self) -> None:
        """Write what the sink holds across batches (the rollup deltas) now: before a fold asked for by hand."""
        await self._sink.seal()

    async def _seal(self) -> None:
        """Seal while idle or stopping; a failure leaves the epoch to recovery, which counts the stored rows."""
        try:
            await self._sink.seal()
        except Exception as err:  # noqa: BLE001 - the database hiccuped: nothing is lost (see rollup_epochs)
            self._log.error(
                "seal", "Writing the rollup deltas failed; they will be recovered from the stored rows: %s", err
            )

    async def _flush(self) -> None:
        batch = self._open
        self._open = Batch(self._loop)
        self._inflight = batch
        self._row_cap = self._max_pending - len(batch.rows)
        # The sink works through a large batch slice by slice with yields between (see batch.ROWS_PER_TURN);
        # a node removed meanwhile is deleted, with its rows, by the next batch.
        plan = build_plan(batch, self._registry, self._ids, self._persisted_seen)
        self._m_depth.set(self.pending())
        result = await self._write_until_committed(plan)
        self._committed(plan, result)
        self._inflight = None
        self._row_cap = self._max_pending
        batch.resolve()
        self._release_backlog()
        self._m_depth.set(self.pending())

    async def _write_until_committed(self, plan: WritePlan) -> WriteResult:
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                result = await self._sink.write(plan, self._ids)
            except Exception as err:  # noqa: BLE001 - any database failure: the batch must not be lost, so retry
                attempt += 1
                delay = min(RETRY_INITIAL * 2 ** (attempt - 1), RETRY_MAX)
                self._m_errors.inc()
                self._m_failing.set(1)
                self._m_depth.set(self.pending())
                self._log.error(
                    "write",
                    "Storage write failed (attempt %d, %d reading(s) pending), retrying in %.1f s: %s",
                    attempt,
                    self.pending(),
                    delay,
                    err,
                )
                await asyncio.sleep(delay)
                continue
            self._m_batch.observe(time.perf_counter() - started)
            if attempt:
                self._m_failing.set(0)
                _LOGGER.warning("Storage write succeeded after %d failed attempt(s)", attempt)
            return result

    def _committed(self, plan: WritePlan, result: WriteResult) -> None:
        """Bring the caches in line with what the database now holds, count, and maybe log a summary."""
        for node_id in plan.removed:
            self._ids.pop(node_id, None)
            self._persisted_seen.pop(node_id, None)
        self._ids.update(result.new_ids)
        for row in plan.nodes:
            if row[7] is not None:
                self._persisted_seen[row[0]] = row[7]
        self._persisted_seen.update(plan.last_seen)
        self._m_stored.inc(result.stored)
        if result.duplicates:
            self._m_duplicates.inc(result.duplicates)
        if plan.invalid_rows:
            self._m_invalid.inc(plan.invalid_rows)
            self._log.warning("invalid", "Dropped %d reading(s) with an invalid ts or dedupe", plan.invalid_rows)
        if result.orphans:
            self._m_orphan.inc(result.orphans)
            self._log.warning("orphan", "Dropped %d reading(s) of nodes the database does not know", result.orphans)
        self._summarize(result)

    def _summarize(self, result: WriteResult) -> None:
        self._summary_rows += result.stored
        now = time.monotonic()
        if now - self._summary_since >= SUMMARY_INTERVAL:
            if self._summary_rows:
                _LOGGER.info("Stored %d readings in the last %.0f s", self._summary_rows, now - self._summary_since)
            self._summary_rows = 0
            self._summary_since = now
