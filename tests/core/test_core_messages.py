"""MessageRouter: MQTT filter matching, dispatch, handler isolation, transports and publishing."""

from __future__ import annotations

import logging

import pytest

from hub.core.errors import HubStateError
from hub.core.messages import MessageRouter, topic_matches, validate_filter


def matches(topic_filter: str, topic: str) -> bool:
    return topic_matches(validate_filter(topic_filter), topic.split("/"))


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("devices/aa/data", "devices/aa/data", True),
        ("devices/aa/data", "devices/aa/status", False),
        ("devices/aa/data", "devices/aa/data/x", False),
        ("devices/aa/data", "devices/aa", False),
        ("devices/+/data", "devices/aa:bb/data", True),
        ("devices/+/data", "devices//data", True),  # + matches an empty level
        ("devices/+/data", "devices/aa/bb/data", False),
        ("devices/+/data", "devices/aa", False),
        ("+/+", "a/b", True),
        ("+/+", "a/b/c", False),
        ("+", "a", True),
        ("+", "a/b", False),
        ("devices/#", "devices/aa/data", True),
        ("devices/#", "devices", True),  # # also matches the parent level
        ("devices/#", "other/aa", False),
        ("#", "anything/at/all", True),
        ("homeassistant/+/+/config", "homeassistant/sensor/t/config", True),
        ("homeassistant/+/+/config", "homeassistant/sensor/node/t/config", False),
        ("a/+/#", "a/b", True),
        ("a/+/#", "a", False),
        ("Devices/aa", "devices/aa", False),  # case-sensitive
    ],
)
def test_filter_matching(topic_filter, topic, expected):
    assert matches(topic_filter, topic) is expected


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b#", "#/a", "a/+b", "a+/b", "a/##"])
def test_invalid_filters(bad):
    with pytest.raises(ValueError):
        validate_filter(bad)
    router = MessageRouter()
    with pytest.raises(ValueError):
        router.subscribe(bad, lambda *a: None)
    assert router.filters() == {}


def test_dispatch_to_every_matching_handler():
    router = MessageRouter()
    got = []
    router.subscribe("devices/+/data", lambda t, p, r: got.append(("plus", t, p, r)))
    router.subscribe("devices/#", lambda t, p, r: got.append(("hash", t, p, r)))
    router.subscribe("devices/aa/data", lambda t, p, r: got.append(("exact", t, p, r)))
    assert router.dispatch("devices/aa/data", b"{}", True) == 3
    assert sorted(g[0] for g in got) == ["exact", "hash", "plus"]
    assert all(g[1:] == ("devices/aa/data", b"{}", True) for g in got)
    assert router.dispatch("devices/bb/status", b"online") == 1
    assert router.dispatch("other/topic", b"") == 0
    assert router.unmatched == 1


def test_handler_errors_are_isolated_counted_and_logged(caplog):
    router = MessageRouter()
    got = []

    def broken(topic: str, payload: bytes, retained: bool) -> None:
        raise ValueError("bad handler")

    router.subscribe("a/#", broken)
    router.subscribe("a/b", lambda t, p, r: got.append(p))
    with caplog.at_level(logging.ERROR, logger="hub.core.messages"):
        for n in range(3):
            assert router.dispatch("a/b", str(n).encode()) == 2
    assert got == [b"0", b"1", b"2"]
    assert router.handler_errors == 3
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1  # rate-limited
    assert "ValueError: bad handler" in caplog.text


def test_unsubscribe():
    router = MessageRouter()
    got = []
    off = router.subscribe("a/+", lambda t, p, r: got.append(t))
    router.dispatch("a/b", b"")
    off()
    router.dispatch("a/b", b"")
    assert got == ["a/b"]
    assert router.filters() == {}


def test_handlers_run_in_subscription_order_across_plain_and_wildcard_filters():
    router = MessageRouter()
    calls = []
    router.subscribe("a/+", lambda *m: calls.append("wild-1"))
    router.dispatch("a/b", b"")  # cached with the wildcard alone
    router.subscribe("a/b", lambda *m: calls.append("exact"))
    router.subscribe("a/#", lambda *m: calls.append("wild-2"))
    router.subscribe("a/b", lambda *m: calls.append("exact-2"))
    calls.clear()
    assert router.dispatch("a/b", b"") == 4
    assert calls == ["wild-1", "exact", "wild-2", "exact-2"]


def test_plain_topic_subscriptions_come_and_go_without_disturbing_others():
    router = MessageRouter()
    got = []
    unsubscribes = [router.subscribe(f"n/{i}/s", lambda t, p, r: got.append(t)) for i in range(100)]
    for i in range(100):
        router.dispatch(f"n/{i}/s", b"")
    unsubscribes[7]()
    unsubscribes[7]()  # twice is harmless
    assert router.dispatch("n/7/s", b"") == 0 and router.dispatch("n/8/s", b"") == 1
    assert len(got) == 101 and "n/7/s" not in router.filters() and router.unmatched == 1


def test_filters_keep_the_highest_qos():
    router = MessageRouter()
    router.subscribe("a/#", lambda *a: None, qos=0)
    router.subscribe("a/#", lambda *a: None, qos=1)
    router.subscribe("b", lambda *a: None, qos=0)
    assert router.filters() == {"a/#": 1, "b": 0}


class FakeTransport:
    """Records what the router asks of a transport (the real ones are tested against Mosquitto)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, int, bool]] = []
        self.subscribed: list[tuple[str, int]] = []

    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.published.append((topic, payload, qos, retain))

    def subscribe(self, topic_filter: str, qos: int) -> None:
        self.subscribed.append((topic_filter, qos))


async def test_publish_needs_a_transport():
    router = MessageRouter()
    with pytest.raises(HubStateError):
        await router.publish("a", b"x")
    transport = FakeTransport()
    detach = router.attach(transport)
    await router.publish("devices/aa/commands", '{"message_id": 1}', qos=1, retain=False)
    await router.publish("x", b"\x00", qos=0, retain=True)
    assert transport.published == [("devices/aa/commands", b'{"message_id": 1}', 1, False), ("x", b"\x00", 0, True)]
    detach()
    with pytest.raises(HubStateError):
        await router.publish("a", b"x")


async def test_subscriptions_added_while_attached_reach_the_transport():
    router = MessageRouter()
    router.subscribe("before/#", lambda *a: None)
    transport = FakeTransport()
    router.attach(transport)
    assert transport.subscribed == []  # filters() tells it about earlier ones
    router.subscribe("after/+", lambda *a: None, qos=0)
    assert transport.subscribed == [("after/+", 0)]


async def test_a_stale_detach_does_not_remove_a_newer_transport():
    router = MessageRouter()
    old_detach = router.attach(FakeTransport())
    newer = FakeTransport()
    router.attach(newer)
    old_detach()
    await router.publish("a", b"x")
    assert newer.published == [("a", b"x", 1, False)]
