"""The command manager: accepts commands, sends them in priority order, and follows each to its verdict.

The core owns the lifecycle (see :mod:`.model`); integrations own delivery.  An
integration that can reach a kind of node registers a :class:`Deliverer`
(``hub.commands.add_deliverer``): the JSON-contract plugin for ESP32 nodes, an
ESPHome plugin for its entities.  It publishes the command and reports the
node's answers back through :meth:`CommandManager.acknowledge`.

Every status change fires :data:`~hub.core.const.EVENT_COMMAND_UPDATED` with the
whole command, which storage persists and the WebSocket streams; storage also
hands pending commands back at start (:meth:`CommandManager.restore`), so a
queued command survives a restart.

Sending: a few worker tasks take queued commands highest priority first (then
oldest first).  A command whose node is offline waits, under the ``queue``
policy, until the node comes back or the TTL runs out; it is never sent after
its TTL.  A transport that cannot publish right now (broker down) leaves the
command queued and it is tried again.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ..const import EVENT_COMMAND_UPDATED, EVENT_NODE_STATUS_CHANGED, STATUS_OFFLINE
from ..errors import CommandNotFound, CommandRejected, HubError
from ..events import Event, EventBus
from ..ratelimit import RateLimitedLogger
from ..registry import Node, NodeRegistry
from .actions import ActionRegistry
from .model import (
    ACKNOWLEDGED,
    CANCELLED,
    DEFAULT_PRIORITY,
    DEFAULT_TTL,
    DELIVERED,
    EXPIRED,
    FAILED,
    OFFLINE_QUEUE,
    OFFLINE_REFUSE,
    QUEUED,
    SENT,
    SUCCEEDED,
    Command,
    can_move,
)

_LOGGER = logging.getLogger(__name__)

SEND_WORKERS = 8
"""Commands being handed to transports at once (each waits for its broker acknowledgement)."""
RETRY_DELAY = 1.0
"""Seconds before a command the transport could not publish is tried again."""
ANSWER_TIMEOUT = 15.0
"""Seconds after delivery without any answer from the node before the command is sent again.

A node with a clean session that was reconnecting when the broker took the command never
receives it; sending the same ``message_id`` again is safe, since a node executes an id once."""
MAX_RESENDS = 3
RECENT_DONE = 2_000
"""Finished commands kept in memory for quick lookups; older ones are read from storage."""

ANSWERS: dict[str, str] = {
    **dict.fromkeys(("ok", "success", "succeeded"), SUCCEEDED),
    **dict.fromkeys(("error", "failed"), FAILED),
    **dict.fromkeys(("received", "accepted", "acknowledged"), ACKNOWLEDGED),
}
"""What a node may answer in its ack's ``status``, and the lifecycle status that means."""


class Deliverer(Protocol):
    """How an integration sends commands to the nodes it owns.

    A deliverer may also have ``accepts(action) -> bool``: one that has it is asked only for the
    actions it accepts, and is preferred for them over one without it (which takes every action).
    So a node two integrations reach (an ESPHome node that also speaks the JSON contract) gets each
    action through the integration that knows it, whichever registered first.
    """

    def owns(self, node: Node) -> bool:
        """True when this integration can reach ``node``."""

    async def deliver(self, command: Command, node: Node) -> None:
        """Publish ``command`` (QoS 1) and return once the broker acknowledged it; raise if it could not."""


class CommandManager:
    """``hub.commands``: see the module docstring."""

    def __init__(self, bus: EventBus, registry: NodeRegistry, clock: Callable[[], float]) -> None:
        self._bus = bus
        self._registry = registry
        self._clock = clock
        self.actions = ActionRegistry()
        self._deliverers: list[tuple[str, Deliverer]] = []
        self._pending: dict[str, Command] = {}
        self._recent: OrderedDict[str, Command] = OrderedDict()
        self._ready: asyncio.PriorityQueue[tuple[int, float, int, str]] | None = None
        self.answer_timeout = ANSWER_TIMEOUT
        self._resends: dict[str, int] = {}
        """Pending commands sent again for want of an answer, and how often; also marks a resend as due."""
        self._resend_due: set[str] = set()
        self._waiting: dict[str, list[str]] = {}
        """Queued commands parked until their (offline) node comes back, by node id."""
        self._deadlines: list[tuple[float, str]] = []
        self._seq = itertools.count()
        self._done_waiters: dict[str, list[asyncio.Future[Command]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._running = False
        self._log = RateLimitedLogger(_LOGGER)
        self.unknown_answers = 0
        """Acks naming a command this hub does not have pending (late, duplicated, or not ours)."""
        bus.listen(EVENT_NODE_STATUS_CHANGED, self._on_node_status)

    # --- integrations --------------------------------------------------------------
    def add_deliverer(self, name: str, deliverer: Deliverer) -> Callable[[], None]:
        """Let ``deliverer`` send commands to the nodes it owns; returns the function that removes it."""
        entry = (name, deliverer)
        self._deliverers.append(entry)

        def remove() -> None:
            if entry in self._deliverers:
                self._deliverers.remove(entry)

        return remove

    def _deliverer_for(self, node: Node, action: str) -> Deliverer | None:
        """The deliverer for ``action`` to ``node``: one that names the action first, else one that takes any."""
        fallback = None
        for _name, deliverer in self._deliverers:
            accepts = getattr(deliverer, "accepts", None)
            if accepts is None:
                if fallback is None and deliverer.owns(node):
                    fallback = deliverer
            elif accepts(action) and deliverer.owns(node):
                return deliverer
        return fallback

    # --- operators -------------------------------------------------------------------
    def submit(
        self,
        node_id: str,
        action: str,
        params: dict[str, Any] | None = None,
        *,
        sender: str,
        priority: int = DEFAULT_PRIORITY,
        ttl: float = DEFAULT_TTL,
        offline_policy: str = OFFLINE_QUEUE,
    ) -> Command:
        """Validate and queue a command; CommandRejected (nothing stored or sent) when it cannot be accepted."""
        node = self._registry.get(node_id)
        if node is None:
            raise CommandRejected(f"no node {node_id!r}", code="node_not_found")
        validated = self.actions.validate(action, params or {})
        if self._deliverer_for(node, action) is None:
            raise CommandRejected(f"no integration can send {action} to node {node_id}", code="not_commandable")
        if offline_policy == OFFLINE_REFUSE and node.status == STATUS_OFFLINE:
            raise CommandRejected(f"node {node_id} is offline", code="node_offline")
        now = self._clock()
        command = Command(
            id=uuid.uuid4().hex,
            node_id=node_id,
            action=action,
            params=validated,
            priority=priority,
            ttl=ttl,
            created=now,
            sender=sender,
            offline_policy=offline_policy,
            updated=now,
            history=[(QUEUED, now, None)],
        )
        self._pending[command.id] = command
        self._announce(command)
        self._schedule(command)
        return command

    def cancel(self, command_id: str, *, by: str) -> Command:
        """Withdraw a pending command; CommandNotFound, or CommandRejected when it already finished."""
        command = self._pending.get(command_id)
        if command is None:
            if command_id in self._recent:
                done = self._recent[command_id]
                raise CommandRejected(f"command {command_id} already {done.status}", code="already_done")
            raise CommandNotFound(f"no pending command {command_id!r}")
        self._move(command, CANCELLED, f"cancelled by {by}")
        return command

    def get(self, command_id: str) -> Command | None:
        """A pending or recently finished command (older ones: ask storage)."""
        return self._pending.get(command_id) or self._recent.get(command_id)

    def pending(self, node_id: str | None = None) -> list[Command]:
        """Commands not finished yet, oldest first; only ``node_id``'s when given."""
        commands = [c for c in self._pending.values() if node_id is None or c.node_id == node_id]
        return sorted(commands, key=lambda c: c.created)

    async def wait_done(self, command_id: str, timeout: float) -> Command:
        """The command once it finished, or as it is when ``timeout`` seconds passed."""
        command = self.get(command_id)
        if command is None:
            raise CommandNotFound(f"no command {command_id!r}")
        if command.done:
            return command
        future: asyncio.Future[Command] = asyncio.get_running_loop().create_future()
        self._done_waiters.setdefault(command_id, []).append(future)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return command
        finally:
            waiters = self._done_waiters.get(command_id)
            if waiters is not None and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._done_waiters[command_id]

    # --- nodes' answers ---------------------------------------------------------------
    def acknowledge(self, node_id: str, command_id: str, answer: str, detail: str | None = None) -> bool:
        """Record a node's answer to a command; False (counted) when it names no pending command of that node.

        ``answer`` is one of :data:`ANSWERS`' keys.  Synchronous and cheap: integrations call it from
        their message handlers.
        """
        command = self._pending.get(command_id)
        status = ANSWERS.get(answer)
        if command is None or command.node_id != node_id or status is None:
            self.unknown_answers += 1
            return False
        if command.status == SENT:
            # An answer proves delivery. It can overtake the broker's confirm: RabbitMQ confirms a persistent
            # message after writing it to disk, but hands it to the node's subscription before.
            self._move(command, DELIVERED)
        self._move(command, status, detail)
        return True

    def settle(self, command: Command, answer: str, detail: str | None = None) -> None:
        """A deliverer's own verdict, from inside ``deliver``, on a command it sends nothing for (an entity that
        cannot take the action): unlike :meth:`acknowledge`, no delivery is recorded (``sent`` → ``failed``)."""
        status = ANSWERS.get(answer)
        if status is None:
            raise ValueError(f"unknown answer {answer!r} (one of {', '.join(ANSWERS)})")
        if self._pending.get(command.id) is command:
            self._move(command, status, detail)

    # --- storage ---------------------------------------------------------------------------
    def restore(self, commands: Iterable[Command]) -> None:
        """Take back the commands that were pending when the hub stopped (called by storage at setup)."""
        for command in commands:
            if command.done or command.id in self._pending:
                continue
            self._pending[command.id] = command
            self._schedule(command)

    # --- lifecycle --------------------------------------------------------------------------
    async def async_start(self) -> None:
        """Start sending (after every plugin set up and started: the deliverers and transports exist)."""
        self._ready = asyncio.PriorityQueue()
        self._running = True
        for command in self._pending.values():
            if command.status == QUEUED:
                self._enqueue(command)
            elif command.status in (SENT, DELIVERED):  # restored without an answer: ask again if none comes
                self._await_answer(command)
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._send_loop(), name=f"commands-send-{n}") for n in range(SEND_WORKERS)]
        self._arm_expiry()

    async def async_stop(self) -> None:
        """Stop sending; pending commands stay pending (and stored) for the next start."""
        self._running = False
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._ready = None

    def expire_due(self) -> int:
        """Expire every pending command whose TTL has run out; returns how many."""
        now = self._clock()
        expired = 0
        while self._deadlines and self._deadlines[0][0] <= now:
            _, command_id = heapq.heappop(self._deadlines)
            command = self._pending.get(command_id)
            if command is not None:
                self._move(command, EXPIRED, f"no verdict within {command.ttl:g} s")
                expired += 1
        return expired

    # --- internals ------------------------------------------------------------------------------
    def _schedule(self, command: Command) -> None:
        earliest = self._deadlines[0][0] if self._deadlines else None
        heapq.heappush(self._deadlines, (command.expires, command.id))
        if earliest is None or command.expires < earliest:
            self._arm_expiry()
        if command.status == QUEUED and self._ready is not None:
            self._enqueue(command)

    def _enqueue(self, command: Command) -> None:
        assert self._ready is not None
        self._ready.put_nowait((-command.priority, command.created, next(self._seq), command.id))

    def _on_node_status(self, event: Event) -> None:
        if event.data["new"] == STATUS_OFFLINE:
            return
        for command_id in self._waiting.pop(event.data["node_id"], ()):
            command = self._pending.get(command_id)
            if command is not None and self._ready is not None:
                if command.status == QUEUED or command_id in self._resend_due:
                    self._enqueue(command)

    async def _send_loop(self) -> None:
        assert self._ready is not None
        ready = self._ready
        while True:
            *_, command_id = await ready.get()
            command = self._pending.get(command_id)
            resend = command_id in self._resend_due
            self._resend_due.discard(command_id)
            if command is None or (command.status not in (SENT, DELIVERED) if resend else command.status != QUEUED):
                continue
            if self._clock() >= command.expires:
                self._move(command, EXPIRED, "the TTL ran out before it could be sent")
                continue
            node = self._registry.get(command.node_id)
            deliverer = self._deliverer_for(node, command.action) if node is not None else None
            if node is None or deliverer is None:
                self._move(command, FAILED, "the node or its integration is gone")
                continue
            if node.status == STATUS_OFFLINE:
                if resend:
                    self._resend_due.add(command.id)
                self._waiting.setdefault(node.node_id, []).append(command.id)
                continue
            await (self._send_again(command, node, deliverer) if resend else self._send(command, node, deliverer))

    async def _send(self, command: Command, node: Node, deliverer: Deliverer) -> None:
        self._move(command, SENT)
        try:
            await deliverer.deliver(command, node)
        except (HubError, OSError, TimeoutError) as err:
            # Not published (no broker right now): back to the queue, tried again shortly.
            self._log.warning("send", "Command %s to %s not sent, retrying: %s", command.action, node.node_id, err)
            if command.status == SENT:
                self._rewind(command)
                asyncio.get_running_loop().call_later(RETRY_DELAY, self._requeue, command.id)
            return
        self._move(command, DELIVERED)
        self._await_answer(command)

    async def _send_again(self, command: Command, node: Node, deliverer: Deliverer) -> None:
        try:
            await deliverer.deliver(command, node)
        except (HubError, OSError, TimeoutError) as err:
            self._log.warning("send", "Command %s to %s not sent again: %s", command.action, node.node_id, err)
        else:
            self._note(command, f"sent again: no answer within {self.answer_timeout:g} s")
        self._await_answer(command)

    def _await_answer(self, command: Command) -> None:
        """Send the command again if the node has not answered at all within ``answer_timeout``."""
        if self._resends.get(command.id, 0) < MAX_RESENDS and self._running:
            asyncio.get_running_loop().call_later(self.answer_timeout, self._answer_overdue, command.id)

    def _answer_overdue(self, command_id: str) -> None:
        command = self._pending.get(command_id)
        if command is None or command.status not in (SENT, DELIVERED) or self._ready is None:
            return
        if self._clock() + 1.0 >= command.expires:
            return  # it expires before a resend could be answered
        self._resends[command_id] = self._resends.get(command_id, 0) + 1
        self._resend_due.add(command_id)
        self._enqueue(command)

    def _requeue(self, command_id: str) -> None:
        command = self._pending.get(command_id)
        if command is not None and command.status == QUEUED and self._ready is not None:
            self._enqueue(command)

    def _arm_expiry(self) -> None:
        """Set the one timer that expires commands to the earliest deadline (no task, no polling)."""
        if not self._running:
            return
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        if self._deadlines:
            delay = min(max(self._deadlines[0][0] - self._clock(), 0.0), 3600.0)
            self._expiry_timer = asyncio.get_running_loop().call_later(delay, self._on_expiry_timer)

    def _on_expiry_timer(self) -> None:
        self._expiry_timer = None
        self.expire_due()
        self._arm_expiry()

    def _rewind(self, command: Command) -> None:
        """A send that failed before the broker took the command: it is queued again (not a forward step)."""
        command.status = QUEUED
        command.updated = self._clock()
        command.history.append((QUEUED, command.updated, "not sent: retrying"))
        self._announce(command)

    def _note(self, command: Command, detail: str) -> None:
        """Record something that happened to a command without changing its status."""
        command.updated = self._clock()
        command.history.append((command.status, command.updated, detail))
        self._announce(command)

    def _move(self, command: Command, status: str, detail: str | None = None) -> None:
        if not can_move(command.status, status):
            return
        command.status = status
        command.updated = self._clock()
        if detail is not None:
            command.detail = detail
        command.history.append((status, command.updated, detail))
        if command.done:
            self._finish(command)
        self._announce(command)

    def _finish(self, command: Command) -> None:
        self._pending.pop(command.id, None)
        self._resends.pop(command.id, None)
        self._resend_due.discard(command.id)
        self._recent[command.id] = command
        while len(self._recent) > RECENT_DONE:
            self._recent.popitem(last=False)
        for future in self._done_waiters.pop(command.id, ()):
            if not future.done():
                future.set_result(command)

    def _announce(self, command: Command) -> None:
        self._bus.fire(EVENT_COMMAND_UPDATED, {"command": command.as_dict()})
