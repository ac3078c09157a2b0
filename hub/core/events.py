"""The event bus: how the parts of the hub tell each other what happened.

Two kinds of listener, chosen by what the callable is:

* A plain function is called inline, in the firing coroutine.  This is what
  the ingest hot path uses (the storage batch writer, presence): no task, no
  queue, a few hundred nanoseconds per event.  It must not block.
* A coroutine function gets **one** worker task and a bounded queue of its
  own.  Events are put on the queue; the worker awaits the listener for each
  in turn.  A listener that falls behind loses its oldest events (counted in
  :attr:`EventBus.dropped`), never the ingest path's time and never memory
  without bound.  No task is created per event.

Every listener is isolated: an exception is logged (rate-limited) and counted
in :attr:`EventBus.errors` under the listener's name, and the other listeners
still get the event.

Typing: an event type declared as ``EventType[SomeData]`` (see
:mod:`hub.core.event_types`) makes the type checker check the data given to
:meth:`EventBus.fire` and type ``event.data`` in listeners; at runtime data is
the plain dict the producer built, never copied or validated.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar, overload

from .event_types import EventType
from .ratelimit import RateLimitedLogger

_LOGGER = logging.getLogger(__name__)

MATCH_ALL = "*"
"""Listen to every event type."""

DEFAULT_QUEUE_SIZE = 10_000

_DataT = TypeVar("_DataT", bound=Mapping[str, Any])


class Event(Generic[_DataT]):
    """Something that happened: a type, its data (a dict; read-only by convention) and when (epoch seconds)."""

    __slots__ = ("data", "event_type", "time_fired")

    def __init__(self, event_type: str | EventType[_DataT], data: _DataT, time_fired: float) -> None:
        self.event_type: str = event_type  # type: ignore[assignment]  # an EventType is a str at runtime
        self.data = data
        self.time_fired = time_fired

    def as_dict(self) -> dict[str, Any]:
        """The event as plain data, e.g. for JSON."""
        return {"event_type": self.event_type, "data": self.data, "time_fired": self.time_fired}

    def __repr__(self) -> str:
        return f"<Event {self.event_type} {self.data!r}>"


SyncListener = Callable[[Event[Any]], None]
AsyncListener = Callable[[Event[Any]], Awaitable[None]]


def _name_of(listener: Callable[..., Any]) -> str:
    module = getattr(listener, "__module__", None) or "?"
    return f"{module}.{getattr(listener, '__qualname__', repr(listener))}"


def _is_coroutine_callable(listener: Callable[..., Any]) -> bool:
    """True for ``async def`` functions, partials of them and objects with an ``async def __call__``.

    The last case matters: called inline as if sync, it would return a coroutine nobody awaits,
    so every event would be lost without an error.
    """
    return inspect.iscoroutinefunction(listener) or inspect.iscoroutinefunction(type(listener).__call__)


class _AsyncWorker:
    """One queue and one task feeding a coroutine listener, in order."""

    def __init__(self, bus: EventBus, listener: AsyncListener, name: str, queue_size: int) -> None:
        self._bus = bus
        self._listener = listener
        self.name = name
        self.queue: asyncio.Queue[Event[Any]] = asyncio.Queue(queue_size)
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"listener:{name}")

    def deliver(self, event: Event[Any]) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.queue.get_nowait()
            self.queue.task_done()
            self.queue.put_nowait(event)
            self._bus.dropped[self.name] += 1

    async def _run(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self._listener(event)
            except Exception:  # isolation: one listener's bug must not stop the others
                self._bus._listener_failed(self.name, event)
            finally:
                self.queue.task_done()


class _SyncListener:
    __slots__ = ("deliver", "name")

    def __init__(self, listener: SyncListener, name: str) -> None:
        self.deliver = listener
        self.name = name


class EventBus:
    """Fires events to listeners by type; see the module docstring for the delivery rules."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE, clock: Callable[[], float] = time.time) -> None:
        self._listeners: dict[str | EventType[Any], tuple[_SyncListener | _AsyncWorker, ...]] = {}
        self._routes: dict[str | EventType[Any], tuple[_SyncListener | _AsyncWorker, ...]] = {}
        """Per event type with listeners of its own: those, then the catch-all ones (rebuilt on (un)listen)."""
        self._catch_all: tuple[_SyncListener | _AsyncWorker, ...] = ()
        """The :data:`MATCH_ALL` listeners: the route of every event type without listeners of its own."""
        self._queue_size = queue_size
        self._clock = clock
        self._log = RateLimitedLogger(_LOGGER)
        self.errors: Counter[str] = Counter()
        """Exceptions raised, by listener name."""
        self.dropped: Counter[str] = Counter()
        """Events an async listener lost because its queue was full, by listener name."""

    @overload
    def listen(
        self,
        event_type: EventType[_DataT],
        listener: Callable[[Event[_DataT]], None] | Callable[[Event[_DataT]], Awaitable[None]],
    ) -> Callable[[], None]: ...
    @overload
    def listen(self, event_type: str, listener: SyncListener | AsyncListener) -> Callable[[], None]: ...
    def listen(self, event_type: str | EventType[Any], listener: SyncListener | AsyncListener) -> Callable[[], None]:
        """Call ``listener`` for every event of ``event_type`` (or :data:`MATCH_ALL`); returns the unsubscriber.

        A coroutine function must be registered from inside the running event loop.
        """
        name = _name_of(listener)
        entry: _SyncListener | _AsyncWorker
        if _is_coroutine_callable(listener):
            entry = _AsyncWorker(self, listener, name, self._queue_size)  # type: ignore[arg-type]
        else:
            entry = _SyncListener(listener, name)  # type: ignore[arg-type]
        self._listeners[event_type] = (*self._listeners.get(event_type, ()), entry)
        self._reroute()

        def unsubscribe() -> None:
            current = self._listeners.get(event_type, ())
            remaining = tuple(e for e in current if e is not entry)
            if remaining:
                self._listeners[event_type] = remaining
            else:
                self._listeners.pop(event_type, None)
            self._reroute()
            if isinstance(entry, _AsyncWorker):
                entry.task.cancel()

        return unsubscribe

    def _reroute(self) -> None:
        """Precompute who gets each event type, so firing costs one lookup (and nothing when nobody listens)."""
        catch_all = self._listeners.get(MATCH_ALL, ())
        self._catch_all = catch_all
        self._routes = {
            event_type: (*entries, *catch_all)
            for event_type, entries in self._listeners.items()
            if event_type != MATCH_ALL
        }

    def has_listeners(self, event_type: str | EventType[Any]) -> bool:
        """True when firing ``event_type`` would reach anyone (lets producers skip building data)."""
        return bool(self._routes.get(event_type, self._catch_all))

    @overload
    def fire(self, event_type: EventType[_DataT], data: _DataT, time_fired: float | None = None) -> None: ...
    @overload
    def fire(self, event_type: str, data: Mapping[str, Any], time_fired: float | None = None) -> None: ...
    def fire(self, event_type: str | EventType[Any], data: Mapping[str, Any], time_fired: float | None = None) -> None:
        """Deliver an event now to sync listeners and enqueue it for async ones.

        With a typed event type, give ``data`` as a variable annotated with its TypedDict
        (``data: StateReportedData = {…}``): mypy does not infer a dict literal's type from the
        event type, and the annotation costs nothing at runtime.
        """
        entries = self._routes.get(event_type, self._catch_all)
        if not entries:
            return  # nobody listens: no Event is built
        event = Event(event_type, data, self._clock() if time_fired is None else time_fired)
        for entry in entries:
            try:
                entry.deliver(event)
            except Exception:  # isolation: see module docstring
                self._listener_failed(entry.name, event)

    def listener_count(self) -> dict[str, int]:
        """How many listeners each event type has (for diagnostics)."""
        return {str(event_type): len(entries) for event_type, entries in self._listeners.items()}

    async def async_drain(self) -> None:
        """Wait until every async listener has handled what was queued for it so far."""
        workers = {
            entry for entries in self._listeners.values() for entry in entries if isinstance(entry, _AsyncWorker)
        }
        for worker in workers:
            await worker.queue.join()

    async def async_close(self) -> None:
        """Stop every async listener's worker; sync listeners are simply forgotten."""
        workers = [e for entries in self._listeners.values() for e in entries if isinstance(e, _AsyncWorker)]
        self._listeners.clear()
        self._reroute()
        for worker in workers:
            worker.task.cancel()
        await asyncio.gather(*(w.task for w in workers), return_exceptions=True)

    def _listener_failed(self, name: str, event: Event[Any]) -> None:
        self.errors[name] += 1
        self._log.log(
            logging.ERROR,
            name,
            "Listener %s failed on %s event",
            name,
            event.event_type,
            exc_info=True,
        )
