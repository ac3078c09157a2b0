"""Durability: lets a transport hold back its broker acknowledgement until storage has committed.

"Nothing lost across a crash" needs one rule on the ingest path: the broker's
acknowledgement of a message (MQTT PUBACK, AMQP ack) goes out only after the
rows that message produced are committed.  Transports and storage must not
know each other, so they meet here: storage *provides* a barrier (the future
of the batch that is open right now), transports wait for it after dispatching
a message and before acknowledging.  Thousands of messages share one batch
future, so the hot path pays one call and a dict lookup, not a task or a lock.

Storage also tells transports when it is falling behind (:meth:`Durability.backlog`): a transport
then stops reading its connection until storage has caught up, so the broker keeps the rest
(TCP flow control) instead of the hub holding it in memory, refusing it past ``max_pending`` and
reconnecting to get it redelivered.  The broker's own in-flight window is not relied on for this:
Mosquitto 2.0 was seen sending 80,000 unacknowledged messages to a client whose receive maximum
was 10,000.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

BarrierProvider = Callable[[], "asyncio.Future[None] | None"]


class Durability:
    """Where storage registers its commit barrier and transports ask for it."""

    def __init__(self) -> None:
        self._provider: BarrierProvider | None = None
        self._backlog: BarrierProvider | None = None

    def set_provider(self, provider: BarrierProvider, backlog: BarrierProvider | None = None) -> Callable[[], None]:
        """Storage calls this once; returns a function that withdraws the provider.

        ``backlog`` answers :meth:`backlog` (None: storage never asks transports to pause).
        """
        self._provider = provider
        self._backlog = backlog

        def withdraw() -> None:
            if self._provider is provider:
                self._provider = None
                self._backlog = None

        return withdraw

    def backlog(self) -> asyncio.Future[None] | None:
        """None while storage keeps up; else a future that completes once it has caught up.

        A transport that gets a future stops taking input (pauses reading its connection, or
        its consumer) until the future is done, whatever its outcome.  Asked once per chunk of
        input read, not per message.
        """
        backlog = self._backlog
        return None if backlog is None else backlog()

    def barrier(self) -> asyncio.Future[None] | None:
        """A future that completes once everything handed to storage so far is committed.

        None when no storage is loaded or nothing is outstanding: acknowledge at once.  The
        future fails if the hub stops before the commit; the transport must then *not*
        acknowledge, so the broker redelivers after restart.  Transports group their
        acknowledgements by this future (``add_done_callback``) rather than awaiting it per
        message, so it must be the same object for every message of a batch.
        """
        provider = self._provider
        return None if provider is None else provider()

    async def wait_committed(self) -> None:
        """Wait until everything handed to storage so far is committed (return at once without storage).

        For code that is not a transport (tests, benchmarks, a plugin that must read back what it
        just wrote).  Shielded: cancelling the waiter does not fail the batch for every other
        message in it.
        """
        barrier = self.barrier()
        if barrier is not None:
            await asyncio.shield(barrier)
