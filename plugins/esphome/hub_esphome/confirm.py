"""A command's verdict from what the node reports next: "switch.relay is ON" is how ESPHome says "done".

ESPHome nodes answer no command directly (neither over MQTT nor over the native
API); they publish the new state of the entity.  So after delivering, the deliverer
leaves an *expectation* here: the entity key, and a test of the next reported
values that answers ``ok`` (or ``received`` for a step on the way, e.g. an update
starting) — which goes to ``hub.commands.acknowledge`` like a JSON-contract node's
ack.  A command whose expectation is not met within its timeout fails, saying what
the entity reports instead.

Only **fresh** states count: ``state_reported`` here, and, with several hub
processes on RabbitMQ, another process's readings, which arrive coalesced as
``state_changed`` carrying ``origin`` (a worker holds the node's connection or its
broker; an API instance sent the command).  A retained state the broker replays is
no answer (it fires no ``state_reported``, and a local ``state_changed`` without
``origin`` is ignored).  The listeners are registered only while something is
expected, so the ingest path pays nothing otherwise, and then one dict lookup per
message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED, Command, Event, StateChangedData, StateReportedData

if TYPE_CHECKING:
    from hub import Hub

Test = Callable[[Any], str | None]
"""test(value) → ``"ok"``, ``"received"``, or None (not yet)."""


@dataclass(slots=True)
class _Expectation:
    command: Command
    key: str
    test: Test
    describe: Callable[[Any], str]
    """describe(value): the detail for the verdict (``switch.relay is ON``), also when it times out."""
    fail_on_timeout: bool
    timer: asyncio.TimerHandle | None = None
    answers: set[str] = field(default_factory=set)


class Confirmations:
    """Expectations by node, the one listener, and the timers (see the module docstring)."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._waiting: dict[str, dict[str, _Expectation]] = {}
        self._unlisten: list[Callable[[], None]] = []

    def expect(
        self,
        command: Command,
        key: str,
        test: Test,
        describe: Callable[[Any], str],
        *,
        timeout: float | None,
    ) -> None:
        """Wait for ``node.entities[key]`` to pass ``test``; fail the command after ``timeout`` s (None: only its TTL)."""
        self.discard(command)
        expectation = _Expectation(command, key, test, describe, fail_on_timeout=timeout is not None)
        remaining = command.expires - self._hub.clock()
        delay = max(0.0, min(timeout, remaining) if timeout is not None else remaining)
        expectation.timer = asyncio.get_running_loop().call_later(delay, self._timed_out, command.node_id, command.id)
        self._waiting.setdefault(command.node_id, {})[command.id] = expectation
        if not self._unlisten:
            bus = self._hub.bus
            self._unlisten = [
                bus.listen(EVENT_STATE_REPORTED, self._on_state_reported),
                bus.listen(EVENT_STATE_CHANGED, self._on_remote_state),
            ]

    def discard(self, command: Command) -> None:
        """Forget what was expected of ``command`` (it is being sent again, or was not sent at all)."""
        self._drop(command.node_id, command.id)

    def answer_soon(self, command: Command, answer: str, detail: str) -> None:
        """Give ``command`` its verdict once the manager has recorded the delivery (the next loop turn)."""
        asyncio.get_running_loop().call_soon(self._answer, command, answer, detail)

    def close(self) -> None:
        """Stop every timer and the listener (the hub stops; pending commands stay pending)."""
        for node_id in list(self._waiting):
            for command_id in list(self._waiting.get(node_id, ())):
                self._drop(node_id, command_id)

    @property
    def pending(self) -> int:
        return sum(len(waiting) for waiting in self._waiting.values())

    # --- internals ------------------------------------------------------------------------
    def _answer(self, command: Command, answer: str, detail: str) -> None:
        self._hub.commands.acknowledge(command.node_id, command.id, answer, detail)

    def _on_state_reported(self, event: Event[StateReportedData]) -> None:
        waiting = self._waiting.get(event.data["node_id"])
        if waiting:
            self._check(waiting, event.data["states"])

    def _on_remote_state(self, event: Event[StateChangedData]) -> None:
        data = event.data
        if "origin" in data and (waiting := self._waiting.get(data["node_id"])):
            self._check(waiting, {data["key"]: data["new_state"]})

    def _check(self, waiting: dict[str, _Expectation], states: dict[str, Any]) -> None:
        for command_id, expectation in list(waiting.items()):
            if expectation.key not in states:
                continue
            value = states[expectation.key]
            answer = expectation.test(value)
            if answer is None or answer in expectation.answers:
                continue
            expectation.answers.add(answer)
            if answer == "ok":
                self._drop(expectation.command.node_id, command_id)
            self._answer(expectation.command, answer, expectation.describe(value))

    def _timed_out(self, node_id: str, command_id: str) -> None:
        expectation = self._waiting.get(node_id, {}).get(command_id)
        if expectation is None:
            return
        self._drop(node_id, command_id)
        if expectation.fail_on_timeout and not expectation.command.done:
            node = self._hub.registry.get(node_id)
            entity = node.entities.get(expectation.key) if node is not None else None
            now = expectation.describe(entity.state if entity is not None else None)
            self._answer(expectation.command, "error", f"no confirmation from the node: {now}")

    def _drop(self, node_id: str, command_id: str) -> None:
        waiting = self._waiting.get(node_id)
        expectation = waiting.pop(command_id, None) if waiting is not None else None
        if expectation is not None and expectation.timer is not None:
            expectation.timer.cancel()
        if waiting is not None and not waiting:
            del self._waiting[node_id]
        if not self._waiting:
            for unlisten in self._unlisten:
                unlisten()
            self._unlisten = []
