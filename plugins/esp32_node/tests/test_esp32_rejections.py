"""Bad input on devices/{MAC}/data: every rejection reason is counted, nothing leaks into the registry."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest
from esp32_testing import Recorder
from hub_esp32_node.contract import MAX_DEPTH, MAX_KEYS, MAX_PAYLOAD
from hub_esp32_node.ingest import Esp32Ingest

from hub import EVENT_STATE_REPORTED, Hub

MAC = "AA:BB:CC:DD:EE:FF"
REASONS = (
    "bad_topic",
    "bad_mac",
    "too_large",
    "not_json",
    "not_object",
    "too_deep",
    "too_many_keys",
    "bad_key",
    "mac_mismatch",
    "bad_status",
)


def nested(levels: int) -> dict[str, Any]:
    """An object nesting ``levels`` deep, the outer object included."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"inner": value}
    return value


def counts(hub: Hub) -> dict[str, float]:
    return {reason: hub.metrics.value("messages_rejected", reason=reason) for reason in REASONS}


@pytest.mark.parametrize(
    ("mac", "payload", "reason"),
    [
        ("not-a-mac", b'{"temperature": 1}', "bad_mac"),
        ("", b'{"temperature": 1}', "bad_mac"),
        ("AA:BB:CC:DD:EE:GG", b'{"temperature": 1}', "bad_mac"),
        ("AA:BB-CC:DD:EE:FF", b'{"temperature": 1}', "bad_mac"),
        (MAC, b'{"temperature": "' + b"x" * MAX_PAYLOAD + b'"}', "too_large"),
        (MAC, b"{temperature: 1}", "not_json"),
        (MAC, b"", "not_json"),
        (MAC, b"\xff\xfe{}", "not_json"),
        (MAC, b'{"temperature": NaN}', "not_json"),
        (MAC, b'{"temperature": Infinity}', "not_json"),
        (MAC, b'{"temperature": -Infinity}', "not_json"),
        (MAC, b'{"temperature": 1e400}', "not_json"),
        (MAC, b'{"temperature": 1', "not_json"),
        (MAC, b"[1, 2]", "not_object"),
        (MAC, b"42", "not_object"),
        (MAC, b'"online"', "not_object"),
        (MAC, b"null", "not_object"),
        (MAC, orjson.dumps({"temperature": 1, "deep": nested(MAX_DEPTH)}), "too_deep"),
        (MAC, orjson.dumps({"temperature": 1, "deep": [[[[[[[[1]]]]]]]]}), "too_deep"),
        (MAC, orjson.dumps({f"k{i}": i for i in range(MAX_KEYS + 1)}), "too_many_keys"),
        (MAC, b'{"temperature": 1, "mac_address": "11:22:33:44:55:66"}', "mac_mismatch"),
        (MAC, b'{"temperature": 1, "mac_address": "garbage"}', "mac_mismatch"),
        (MAC, b'{"temperature": 1, "mac_address": 42}', "mac_mismatch"),
    ],
)
async def test_rejected_and_counted_without_touching_the_registry(
    hub: Hub, events: Recorder, mac: str, payload: bytes, reason: str
) -> None:
    assert hub.messages.dispatch(f"devices/{mac}/data", payload, False) == 1

    assert counts(hub) == {r: float(r == reason) for r in REASONS}
    assert len(hub.registry) == 0
    assert events.events == []


async def test_limits_themselves_are_accepted(hub: Hub, events: Recorder) -> None:
    payload = orjson.dumps({"deep": nested(MAX_DEPTH - 1), **{f"k{i}": i for i in range(MAX_KEYS - 1)}})
    assert len(payload) <= MAX_PAYLOAD
    hub.messages.dispatch(f"devices/{MAC}/data", payload, False)
    assert sum(counts(hub).values()) == 0
    assert len(events.of(EVENT_STATE_REPORTED)[0]["states"]) == MAX_KEYS - 1


@pytest.mark.parametrize(
    "topic",
    [
        "devices/AA:BB:CC:DD:EE:FF/data/extra",
        "device/AA:BB:CC:DD:EE:FF/data",
        "devices/AA:BB:CC:DD:EE:FF/status",
        "devices/data",
    ],
)
async def test_bad_topic_handed_straight_to_the_handler(hub: Hub, topic: str) -> None:
    # The router only delivers matching topics; another transport (or a plugin calling the handler) might not.
    Esp32Ingest(hub).handle_data(topic, b'{"temperature": 1}', False)
    assert counts(hub)["bad_topic"] == 1
    assert len(hub.registry) == 0


async def test_bad_key_is_skipped_and_the_rest_of_the_message_kept(hub: Hub, events: Recorder) -> None:
    hub.messages.dispatch(f"devices/{MAC}/data", b'{"temperature": 21, "bad key!": 1, "": 2, "ok-key_2": 3}', False)

    assert counts(hub)["bad_key"] == 1  # one per message, however many keys it drops
    [report] = events.of(EVENT_STATE_REPORTED)
    assert report["states"] == {"temperature": 21, "ok-key_2": 3}


async def test_key_longer_than_64_characters_is_a_bad_key(hub: Hub, events: Recorder) -> None:
    hub.messages.dispatch(f"devices/{MAC}/data", orjson.dumps({"t": 1, "k" * 65: 2}), False)
    assert counts(hub)["bad_key"] == 1
    assert events.of(EVENT_STATE_REPORTED)[0]["states"] == {"t": 1}


async def test_a_bad_message_between_two_good_ones_loses_neither(hub: Hub, events: Recorder) -> None:
    topic = f"devices/{MAC}/data"
    hub.messages.dispatch(topic, b'{"seq": 1, "temperature": 20.0}', False)
    hub.messages.dispatch(topic, b'{"seq": 2, "temperature": NaN}', False)
    hub.messages.dispatch(topic, b'{"seq": 3, "temperature": 20.5, "mac_address": "00:00:00:00:00:01"}', False)
    hub.messages.dispatch(topic, b'{"seq": 4, "temperature": 21.0}', False)

    assert [r["states"]["temperature"] for r in events.of(EVENT_STATE_REPORTED)] == [20.0, 21.0]
    assert counts(hub)["not_json"] == 1 and counts(hub)["mac_mismatch"] == 1


async def test_rejections_are_logged_rate_limited(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hub_esp32_node"):
        for _ in range(100):
            hub.messages.dispatch(f"devices/{MAC}/data", b"garbage", False)
    assert counts(hub)["not_json"] == 100
    assert len([r for r in caplog.records if "not_json" in r.getMessage()]) == 1
