"""Durability: lets a transport hold back its broker acknowledgement until storage has committed.

"Nothing lost across a crash" needs one rule on the ingest path: the broker's
acknowledgement of a message (MQTT PUBACK, AMQP ack) goes out only after the
rows that message produced are committed.  Transports and storage must not
know each other, so they meet here: storage *provides* a barrier (the future
of the batch that is open right now), transports wait for it after dispatching
a message and before acknowledging.  Thousands of messages share one batch
future, so the hot path pays one call and a dict lookup, not a task or a lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

BarrierProvider = Callable[[], "asyncio.Future[None] | None"]


class Durability:
    """Where storage registers its commit barrier and transports ask for it."""

    def __init__(self) -> None:
        self._provider: BarrierProvider | None = None

    def set_provider(self, provider: BarrierProvider) -> Callable[[], None]:
        """Storage calls this once; returns a function that withdraws the provider."""
        self._provider = provider

        def withdraw() -> None:
            if self._provider is provider:
                self._provider = None

        return withdraw

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
