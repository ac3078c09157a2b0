"""The presence tracker: decides when a node is online or offline, and why.

Rules (reasons from :mod:`hub`):

* **online** (``message``) on any message: every ``state_reported`` and every
  ``availability_reported`` with ``online=True``;
* **offline at once** (``lwt``) on ``availability_reported`` with
  ``online=False``: the node's Last Will or an explicit ``offline`` status;
* **offline after silence** (``timeout``) longer than the node's *allowed
  silence*: ``max(timeout, interval_factor x learned interval)`` once three
  intervals are learned (see :mod:`.interval`), and at least
  ``initial_timeout`` before that, so a node whose rhythm is still unknown (just
  registered, or just restored after a restart) is not timed out on a guess.

Cost.  The listener runs inline for every telemetry message; it does a few
dict lookups and float comparisons and touches nothing else unless the node's
status changes or a new burst starts (then it sorts at most ``window``
floats).  The silence check does not scan the fleet: a min-heap holds one live
due time per online node, so a check pops only the nodes whose due time has
passed.  A popped node that was heard from meanwhile is pushed back with its
new deadline: each online node costs one heap push per allowed silence
(10 000 nodes at 30 s: ~330 pushes a second), not one scan per check.  When a
node's allowed silence shrinks (its rhythm learned) it gets a new, earlier
entry; the old one is recognised as stale and skipped when it surfaces.

Restarts.  Storage restores nodes (status, last_seen) during ``hub_setup``.
While the hub was down it could not hear anyone, so the downtime is not
evidence of silence: silence is counted only while the hub listened.  Right
after the restore (presence sets up after storage, before any transport
starts) presence estimates when the hub stopped hearing as the newest restored
``last_seen`` and shifts every restored ``online`` node's last_seen forward by
the downtime (``start - that estimate``).  So a node that had already been
silent for 80 s when the hub stopped, and stays silent, is marked offline
10 s after the restart (with 90 s allowed), as if the hub had never been down,
while a node heard just before the stop gets its full allowed silence; and a
restart, however long, never marks the fleet offline at once.  A dead node
whose retained LWT the broker replays on subscribe is marked offline at once.
The gap across the restart is not learned as an interval.

Broker outages.  The same reasoning holds while the hub runs but its transport
has lost the broker (``transport_disconnected``): the hub is deaf, so nobody is
timed out meanwhile, and on ``transport_connected`` every online node's silence
is shifted by the outage, exactly as after a restart.  Without this a broker
restart longer than the allowed silence would mark the whole fleet offline.

Clocks.  Silence is measured on the monotonic clock (``monotonic``, the hub's
``Hub.monotonic``), never on the wall clock: an NTP step or an operator setting
the date moves the wall clock by minutes or hours at once, which would time the
whole fleet out (forward) or keep dead nodes online (backward).  Only the
status timestamps (``status_since``, what the API shows) are wall-clock times;
wall-clock ``last_seen`` values that come from the database (a restart, another
process) are turned into monotonic ones once, when they are read.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hub import (
    EVENT_AVAILABILITY_REPORTED,
    EVENT_NODE_REMOVED,
    EVENT_NODE_STATUS_CHANGED,
    EVENT_STATE_REPORTED,
    EVENT_TRANSPORT_CONNECTED,
    EVENT_TRANSPORT_DISCONNECTED,
    REASON_LWT,
    REASON_MESSAGE,
    REASON_TIMEOUT,
    STATUS_OFFLINE,
    STATUS_ONLINE,
    AvailabilityReportedData,
    Event,
    EventBus,
    Metrics,
    Node,
    NodeRegistry,
    NodeRemovedData,
    NodeStatusChangedData,
    RateLimitedLogger,
    StateReportedData,
    TransportData,
)

from .interval import BURST_WINDOW, IntervalLearner

_LOGGER = logging.getLogger(__name__)

MIN_SAMPLES = 3
"""Intervals a node must have shown before its learned rhythm alone may shorten the allowed silence."""

_NEVER = -math.inf


class _NodePresence:
    """What presence remembers about one node between its messages."""

    __slots__ = ("allowed", "burst_start", "due", "heard", "intervals", "learn", "quiet_from")

    def __init__(self, window: int, allowed: float) -> None:
        self.burst_start = _NEVER
        """When the node's current burst of messages began (monotonic, as every time here but ``status_since``)."""
        self.heard = _NEVER
        """When the node was last heard from."""
        self.learn = False
        """Whether the gap before the next burst is an interval (False after an LWT or a restart)."""
        self.intervals = IntervalLearner(window)
        self.allowed = allowed
        """Seconds of silence allowed (recomputed when an interval is learned)."""
        self.due: float | None = None
        """The due time of this node's entry in the heap (None: no live entry)."""
        self.quiet_from = _NEVER
        """Silence before this moment does not count (a restored node: its last_seen shifted by the downtime)."""


class PresenceTracker:
    """See the module docstring.  Drive it with :meth:`check` (the background task does, every ``check_interval``)."""

    def __init__(
        self,
        registry: NodeRegistry,
        bus: EventBus,
        metrics: Metrics,
        clock: Callable[[], float],
        *,
        timeout: float,
        initial_timeout: float,
        interval_factor: float,
        interval_window: int,
        check_interval: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._bus = bus
        self._clock = clock
        self._mono = monotonic
        self.timeout = timeout
        self.initial_timeout = max(initial_timeout, timeout)
        self.interval_factor = interval_factor
        self.interval_window = interval_window
        self.check_interval = check_interval
        self._nodes: dict[str, _NodePresence] = {}
        self._heap: list[tuple[float, str]] = []
        self._task: asyncio.Task[Any] | None = None
        self.gate: Callable[[], Awaitable[bool]] | None = None
        """Asked before each check: False skips it (a follower: another process judges silence, see .leader)."""
        self._deaf_since: float | None = None
        """Set while a transport has lost its broker: silence then is no evidence (see the module docstring)."""
        self._errors = RateLimitedLogger(_LOGGER, interval=60.0)
        self._online = metrics.gauge("nodes_online", "Nodes whose status is online")
        self._offline = metrics.gauge("nodes_offline", "Nodes whose status is offline")
        changes = metrics.counter("status_changes", "Node status changes, by reason", ["reason"])
        self._changes = {reason: changes.labels(reason) for reason in (REASON_MESSAGE, REASON_LWT, REASON_TIMEOUT)}
        self._changes_counter = changes

    # --- lifecycle ---------------------------------------------------------------
    def attach(self) -> None:
        """Listen to the bus (``hub_setup``): from now on every message counts."""
        listen = self._bus.listen
        listen(EVENT_STATE_REPORTED, self._on_state_reported)
        listen(EVENT_AVAILABILITY_REPORTED, self._on_availability)
        listen(EVENT_NODE_STATUS_CHANGED, self._on_status_changed)
        listen(EVENT_NODE_REMOVED, self._on_node_removed)
        listen(EVENT_TRANSPORT_DISCONNECTED, self._on_transport_lost)
        listen(EVENT_TRANSPORT_CONNECTED, self._on_transport_back)

    def start(self, now: float) -> None:
        """Take stock of the restored fleet (``hub_setup``): schedule restored online nodes, count statuses."""
        nodes = list(self._registry)
        last_heard = max((n.last_seen for n in nodes if n.last_seen is not None and n.last_seen <= now), default=now)
        downtime = now - last_heard
        mono = self._mono()
        for node in nodes:
            if node.status != STATUS_ONLINE:
                continue
            state = self._nodes.get(node.node_id)
            if state is None:
                state = self._nodes[node.node_id] = _NodePresence(self.interval_window, self.initial_timeout)
                quiet_from = now if node.last_seen is None else min(node.last_seen + downtime, now)
                state.quiet_from = mono - (now - quiet_from)
            if state.due is None:
                self._schedule(node, state)
        self._recount()

    def start_checking(self, create_task: Callable[..., asyncio.Task[Any]]) -> None:
        """Run :meth:`check` every ``check_interval`` seconds in a background task."""
        self._task = create_task(self._run(), name="presence-check")

    def stop(self) -> None:
        """Stop judging silence (``hub_stop``): the hub going deaf must not mark the fleet offline."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                if self.gate is not None and not await self.gate():
                    continue
                self.check(self._clock())
            except Exception:  # a bug here must not end offline detection for good
                self._errors.log(logging.ERROR, "check", "Presence check failed", exc_info=True)

    def observe(self, node_id: str, last_seen: float) -> None:
        """Another process heard ``node_id`` at ``last_seen`` (the database says so): judge it from that."""
        node = self._registry.get(node_id)
        if node is None:
            return
        if node.last_seen is None or last_seen > node.last_seen:
            node.last_seen = last_seen
        if node.status != STATUS_ONLINE:
            return
        state = self._nodes.get(node_id)
        if state is None:
            state = self._nodes[node_id] = _NodePresence(self.interval_window, self.initial_timeout)
        heard = self._mono() - max(self._clock() - last_seen, 0.0)  # how long ago, on the monotonic clock
        if heard > state.heard:
            state.heard = heard
        if state.due is None:
            self._schedule(node, state)

    # --- queries -------------------------------------------------------------------
    def allowed_silence(self, node_id: str) -> float:
        """Seconds of silence after which ``node_id`` is marked offline."""
        state = self._nodes.get(node_id)
        return self.initial_timeout if state is None else state.allowed

    def learned_interval(self, node_id: str) -> float | None:
        """The node's learned publish interval in seconds, None while none was seen."""
        state = self._nodes.get(node_id)
        if state is None or not state.intervals.count:
            return None
        return state.intervals.value

    def deadline(self, node_id: str) -> float | None:
        """When ``node_id`` will be marked offline if it stays silent; None if it is not online and tracked."""
        node = self._registry.get(node_id)
        if node is None or node.status != STATUS_ONLINE:
            return None
        state = self._nodes.get(node_id)
        if state is None or state.due is None:
            return None
        return self._clock() + (self._silent_since(state) + state.allowed - self._mono())

    def _silent_since(self, state: _NodePresence) -> float:
        """Since when (monotonic) the node's silence counts."""
        since = state.heard if state.heard > state.quiet_from else state.quiet_from
        return self._mono() if since == _NEVER else since

    def due(self, now: float) -> list[str]:
        """The nodes a check at ``now`` (wall clock, as for :meth:`check`) would mark offline on what this process heard.

        The leader confirms these from the database before checking (another process may
        have heard them).  Only the heap's due entries are visited, not the whole fleet.
        """
        now = self._mono() + (now - self._clock())  # the monotonic moment ``now`` stands for
        heap, nodes, registry = self._heap, self._nodes, self._registry
        silent: list[str] = []
        pending = [0] if heap else []
        while pending:
            index = pending.pop()
            if index >= len(heap) or heap[index][0] > now:
                continue  # neither this entry nor its children (heap order) are due
            pending += (2 * index + 1, 2 * index + 2)
            node_id = heap[index][1]
            state = nodes.get(node_id)
            node = registry.get(node_id)
            if (
                state is not None
                and node is not None
                and node.status == STATUS_ONLINE
                and self._silent_since(state) + state.allowed <= now
            ):
                silent.append(node_id)
        return silent

    # --- the silence check -------------------------------------------------------------
    def check(self, now: float | None = None) -> int:
        """Mark offline every online node silent for longer than it is allowed; returns how many.

        ``now`` is a wall-clock time (default: the hub's clock now); silence is judged on the
        monotonic clock, at the moment ``now`` stands for (``now`` minus the wall clock's reading,
        added to the monotonic clock's), so a wall clock that jumped does not count as silence.
        """
        if self._deaf_since is not None:
            return 0  # the hub cannot hear anyone right now
        wall = self._clock()
        if now is None:
            now = wall
        now, wall = self._mono() + (now - wall), now
        heap = self._heap
        nodes = self._nodes
        registry = self._registry
        marked = 0
        while heap and heap[0][0] <= now:
            due, node_id = heapq.heappop(heap)
            state = nodes.get(node_id)
            if state is None or state.due != due:
                continue  # a stale entry: the node was removed or rescheduled
            state.due = None
            node = registry.get(node_id)
            if node is None or node.status != STATUS_ONLINE:
                continue
            silent_since = self._silent_since(state)
            deadline = silent_since + state.allowed
            if deadline > now:
                state.due = deadline
                heapq.heappush(heap, (deadline, node_id))
                continue
            if registry.set_status(node, STATUS_OFFLINE, REASON_TIMEOUT, wall):
                marked += 1
                silence = now - silent_since
                _LOGGER.info("node %s offline (timeout after %.0f s silence)", node_id, silence)
        return marked

    def _schedule(self, node: Node, state: _NodePresence) -> None:
        due = self._silent_since(state) + state.allowed
        state.due = due
        heapq.heappush(self._heap, (due, node.node_id))

    # --- listeners (hot path) ------------------------------------------------------------
    def _on_state_reported(self, event: Event[StateReportedData]) -> None:
        node = self._registry.get(event.data["node_id"])
        if node is not None:
            self._heard(node, self._mono())

    def _on_availability(self, event: Event[AvailabilityReportedData]) -> None:
        data = event.data
        node = self._registry.get(data["node_id"])
        if node is None:
            return
        if data["online"]:
            self._heard(node, self._mono())
            return
        state = self._nodes.get(node.node_id)
        if state is not None:
            state.learn = False  # the gap until it returns is an outage, not its rhythm
        if self._registry.set_status(node, STATUS_OFFLINE, REASON_LWT, data["ts"]):
            _LOGGER.info("node %s offline (lwt)", node.node_id)

    def _heard(self, node: Node, t: float) -> None:
        state = self._nodes.get(node.node_id)
        if state is None:
            state = self._nodes[node.node_id] = _NodePresence(self.interval_window, self.initial_timeout)
        state.heard = t
        gap = t - state.burst_start
        if gap >= BURST_WINDOW:
            if state.learn:
                learner = state.intervals
                stretched = self.interval_factor * learner.add(gap)
                floor = self.timeout if learner.count >= MIN_SAMPLES else self.initial_timeout
                allowed = state.allowed = max(floor, stretched)
                due = state.due
                if due is not None and t + allowed < due:
                    self._schedule(node, state)  # allowed silence shrank: the queued entry would fire late
            state.learn = True
            state.burst_start = t
        if node.status != STATUS_ONLINE:
            self._go_online(node, state, t)

    def _go_online(self, node: Node, state: _NodePresence, t: float) -> None:
        was, since = node.status, node.status_since
        wall = node.last_seen if node.last_seen is not None else self._clock()
        self._registry.set_status(node, STATUS_ONLINE, REASON_MESSAGE, wall)
        if was == STATUS_OFFLINE and since is not None:
            _LOGGER.info("node %s online (message, after %.0f s offline)", node.node_id, wall - since)
        else:  # a node heard of for the first time: its integration already logged it (rate-limited)
            _LOGGER.debug("node %s online (message)", node.node_id)
        if state.due is None:
            self._schedule(node, state)

    # --- transport outages ---------------------------------------------------------------
    def _on_transport_lost(self, event: Event[TransportData]) -> None:
        if self._deaf_since is None:
            self._deaf_since = self._mono()
            _LOGGER.warning("No message transport: offline detection paused until it reconnects")

    def _on_transport_back(self, event: Event[TransportData]) -> None:
        deaf_since, self._deaf_since = self._deaf_since, None
        if deaf_since is None:
            return
        outage = max(self._mono() - deaf_since, 0.0)
        for node_id, state in self._nodes.items():
            node = self._registry.get(node_id)
            if node is None or node.status != STATUS_ONLINE:
                continue
            state.quiet_from = self._silent_since(state) + outage  # silence counts only while listening
            state.learn = False  # the gap across the outage is not the node's rhythm
        _LOGGER.info("Message transport back after %.0f s: offline detection resumed", outage)

    # --- metrics --------------------------------------------------------------------------
    def _on_status_changed(self, event: Event[NodeStatusChangedData]) -> None:
        data = event.data
        for status, delta in ((data["old"], -1), (data["new"], 1)):
            if status == STATUS_ONLINE:
                self._online.inc(delta)
            elif status == STATUS_OFFLINE:
                self._offline.inc(delta)
        reason = data["reason"]
        counter = self._changes.get(reason)
        if counter is None:
            counter = self._changes[reason] = self._changes_counter.labels(reason)
        counter.inc()

    def _on_node_removed(self, event: Event[NodeRemovedData]) -> None:
        self._nodes.pop(event.data["node_id"], None)
        self._recount()

    def _recount(self) -> None:
        counts = self._registry.count_by_status()
        self._online.set(counts.get(STATUS_ONLINE, 0))
        self._offline.set(counts.get(STATUS_OFFLINE, 0))
