"""One WebSocket client's outgoing messages: a queue bounded in messages and in bytes, drained by one writer task.

The event bus and the command handlers only ever append here (never wait for a
socket).  A client that does not read fast enough lets its queue grow; past
either bound it is judged too slow: the queue is freed at once and the
connection's ``overflow`` callback closes it.  Counting bytes matters because
messages differ a thousandfold in size: 2,048 small events are a few hundred
kilobytes, 2,048 pages of nodes gigabytes.

While a page of nodes is being encoded (the encoder yields to the event loop),
the connection *holds* the events that arrive meanwhile and releases them after
the page, so a client never receives an event before the page that is older
than it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from aiohttp import WSMsgType, web


class Outbox:
    """See the module docstring.  ``overflow(dropped)`` is called once, when a bound is crossed."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        max_messages: int,
        max_bytes: int,
        overflow: Callable[[int], None],
        broken: Callable[[], None],
    ) -> None:
        self._ws = ws
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._overflow = overflow
        self._broken = broken
        self._queue: deque[bytes] = deque()
        self._held: list[bytes] | None = None
        self._wakeup = asyncio.Event()
        self.closed = False
        self.queued_bytes = 0
        """Bytes waiting, held back, or in the frame being written."""

    def send(self, data: bytes) -> None:
        """Queue one complete message; past a bound, free everything and report the overflow.

        A message bigger than the byte bound alone still goes out when nothing else waits
        (a page of nodes is bounded well below the smallest bound allowed).
        """
        if self.closed:
            return
        waiting = len(self._queue) + (len(self._held) if self._held is not None else 0)
        if waiting and (waiting >= self._max_messages or self.queued_bytes + len(data) > self._max_bytes):
            self.close()
            self._overflow(waiting + 1)
            return
        self.queued_bytes += len(data)
        if self._held is not None:
            self._held.append(data)
        else:
            self._queue.append(data)
            self._wakeup.set()

    def hold(self) -> None:
        """Keep what is sent from now on back until :meth:`release`."""
        if self._held is None:
            self._held = []

    def release(self, first: bytes | None = None) -> None:
        """Send ``first`` (the page being encoded while holding), then what was held back, in order."""
        held, self._held = self._held, None
        if self.closed:
            return
        if first is not None:
            self.send(first)
        if held and not self.closed:
            self._queue.extend(held)  # already counted in queued_bytes
            self._wakeup.set()

    def close(self) -> None:
        """Send nothing more and free what waits (the frame being written, if any, still finishes)."""
        self.closed = True
        self._queue.clear()
        self._held = None
        self.queued_bytes = 0

    async def run(self) -> None:
        """The writer task: one frame at a time, waiting for the socket to drain (the client to read)."""
        queue = self._queue
        try:
            while True:
                while queue:
                    data = queue.popleft()
                    await self._ws.send_frame(data, WSMsgType.TEXT)
                    if not self.closed:
                        self.queued_bytes -= len(data)
                self._wakeup.clear()
                await self._wakeup.wait()
        except ConnectionError:
            self._broken()
