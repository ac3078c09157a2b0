"""EventBus: sync and async listeners, MATCH_ALL, isolation, bounded queues, unsubscribe, drain."""

from __future__ import annotations

import asyncio
import logging

from hub.core.events import MATCH_ALL, Event, EventBus


def test_sync_listener_called_inline_with_event():
    bus = EventBus(clock=lambda: 123.0)
    seen: list[Event] = []
    bus.listen("ping", seen.append)
    bus.fire("ping", {"n": 1})
    assert len(seen) == 1  # inline: no await needed
    assert (seen[0].event_type, seen[0].data, seen[0].time_fired) == ("ping", {"n": 1}, 123.0)
    assert seen[0].as_dict() == {"event_type": "ping", "data": {"n": 1}, "time_fired": 123.0}
    bus.fire("ping", {"n": 2}, time_fired=5.0)
    assert seen[1].time_fired == 5.0


def test_only_listeners_of_the_type_are_called():
    bus = EventBus()
    pings, pongs = [], []
    bus.listen("ping", pings.append)
    bus.listen("pong", pongs.append)
    bus.fire("ping", {})
    bus.fire("other", {})
    assert (len(pings), len(pongs)) == (1, 0)


def test_match_all_gets_every_event_after_specific_listeners():
    bus = EventBus()
    order: list[str] = []
    bus.listen(MATCH_ALL, lambda e: order.append(f"all:{e.event_type}"))
    bus.listen("a", lambda e: order.append("a"))
    bus.fire("a", {})
    bus.fire("b", {})
    assert order == ["a", "all:a", "all:b"]
    assert bus.has_listeners("anything")


def test_has_listeners_and_counts():
    bus = EventBus()
    assert not bus.has_listeners("a")
    off = bus.listen("a", lambda e: None)
    bus.listen("a", lambda e: None)
    assert bus.has_listeners("a") and not bus.has_listeners("b")
    assert bus.listener_count() == {"a": 2}
    off()
    assert bus.listener_count() == {"a": 1}


def test_fire_without_listeners_builds_nothing():
    class Clock:
        calls = 0

        def __call__(self) -> float:
            Clock.calls += 1
            return 0.0

    bus = EventBus(clock=Clock())
    bus.fire("nobody", {"x": 1})
    assert Clock.calls == 0


def test_sync_listener_errors_are_isolated_counted_and_logged(caplog):
    bus = EventBus()
    seen = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus.listen("a", broken)
    bus.listen("a", seen.append)
    bus.listen(MATCH_ALL, seen.append)
    with caplog.at_level(logging.ERROR, logger="hub.core.events"):
        bus.fire("a", {})
        bus.fire("a", {})
    assert len(seen) == 4  # the others still got both events
    name = next(iter(bus.errors))
    assert name.endswith("broken") and bus.errors[name] == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # rate-limited: the second failure within 10 s is counted, not logged
    assert "RuntimeError: boom" in caplog.text


def test_unsubscribe_stops_delivery_and_is_idempotent():
    bus = EventBus()
    seen = []
    off = bus.listen("a", seen.append)
    bus.fire("a", {})
    off()
    off()
    bus.fire("a", {})
    assert len(seen) == 1
    assert not bus.has_listeners("a")


def test_same_function_twice_is_two_listeners_and_unsubscribes_separately():
    bus = EventBus()
    seen = []
    off1 = bus.listen("a", seen.append)
    bus.listen("a", seen.append)
    bus.fire("a", {})
    off1()
    bus.fire("a", {})
    assert len(seen) == 3


async def test_async_listener_runs_in_its_worker_in_order():
    bus = EventBus()
    seen: list[int] = []

    async def slow(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(event.data["n"])

    bus.listen("a", slow)
    tasks_before = len(asyncio.all_tasks())
    for n in range(100):
        bus.fire("a", {"n": n})
    assert len(asyncio.all_tasks()) == tasks_before  # no task per event
    assert seen == []  # not inline
    await bus.async_drain()
    assert seen == list(range(100))
    await bus.async_close()


async def test_async_listener_errors_isolated_and_worker_survives(caplog):
    bus = EventBus()
    seen = []

    async def flaky(event: Event) -> None:
        if event.data["n"] == 1:
            raise ValueError("bad event")
        seen.append(event.data["n"])

    bus.listen("a", flaky)
    with caplog.at_level(logging.ERROR):
        for n in range(3):
            bus.fire("a", {"n": n})
        await bus.async_drain()
    assert seen == [0, 2]
    assert sum(bus.errors.values()) == 1
    assert "ValueError: bad event" in caplog.text
    await bus.async_close()


async def test_async_queue_overflow_drops_oldest_and_counts():
    bus = EventBus(queue_size=5)
    seen: list[int] = []
    gate = asyncio.Event()

    async def blocked(event: Event) -> None:
        await gate.wait()
        seen.append(event.data["n"])

    bus.listen("a", blocked)
    bus.fire("a", {"n": 0})
    await asyncio.sleep(0)  # the worker takes event 0 and blocks on the gate
    for n in range(1, 21):
        bus.fire("a", {"n": n})
    name = next(iter(bus.dropped))
    assert bus.dropped[name] == 15  # 20 queued into 5 slots: the 15 oldest dropped
    gate.set()
    await bus.async_drain()
    assert seen == [0, 16, 17, 18, 19, 20]
    await bus.async_close()


async def test_unsubscribing_an_async_listener_ends_its_worker():
    bus = EventBus()
    seen = []

    async def listener(event: Event) -> None:
        seen.append(event)

    off = bus.listen("a", listener)
    worker_tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("listener:")]
    assert len(worker_tasks) == 1
    off()
    await asyncio.sleep(0)
    assert worker_tasks[0].cancelled() or worker_tasks[0].done()
    bus.fire("a", {})
    await bus.async_drain()
    assert seen == []


async def test_drain_with_mixed_listeners_and_close():
    bus = EventBus()
    got = []

    async def a(event: Event) -> None:
        await asyncio.sleep(0.001)
        got.append(("a", event.data["n"]))

    async def b(event: Event) -> None:
        got.append(("b", event.data["n"]))

    bus.listen("x", a)
    bus.listen(MATCH_ALL, b)
    bus.listen("x", lambda e: got.append(("sync", e.data["n"])))
    for n in range(3):
        bus.fire("x", {"n": n})
    await bus.async_drain()
    assert sorted(got) == sorted([(k, n) for k in ("a", "b", "sync") for n in range(3)])
    await bus.async_close()
    assert bus.listener_count() == {}
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("listener:") and not t.done()]


async def test_async_callables_other_than_functions_get_a_worker():
    """A partial of a coroutine function and an object with ``async def __call__`` are async listeners too."""
    import functools

    bus = EventBus()
    got = []

    class Listener:
        async def __call__(self, event: Event) -> None:
            got.append(("object", event.data["n"]))

    async def tagged(tag: str, event: Event) -> None:
        got.append((tag, event.data["n"]))

    bus.listen("a", Listener())
    bus.listen("a", functools.partial(tagged, "partial"))
    bus.fire("a", {"n": 1})
    await bus.async_drain()
    assert sorted(got) == [("object", 1), ("partial", 1)]
    assert not bus.errors
    await bus.async_close()
