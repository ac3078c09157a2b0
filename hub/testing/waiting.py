"""Waiting on a condition in a test: poll until it holds, with a bounded timeout and a message that says what failed.

Tests never sleep and hope: they wait for what they need (a node registered, a
subscription acknowledged, a connection back), and a test that times out says
which of those did not happen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_TIMEOUT = 10.0
"""Seconds; generous, since a loaded 2-core CI machine is slow, and a passing wait returns at once anyway."""


async def wait_until(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    message: str = "the condition",
    interval: float = 0.01,
) -> T:
    """Call ``predicate`` (plain or ``async``) every ``interval`` s until it returns something truthy; return that.

    After ``timeout`` seconds the test fails with an :class:`AssertionError` naming
    ``message`` and the last value seen.  An exception raised by ``predicate`` is not
    swallowed: it ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {message} (last value: {result!r})")
        await asyncio.sleep(interval)
