"""The registry's limits on the JSON contract: what is refused is counted by reason, the rest of the input is kept.

One MAC inventing keys, a script inventing MACs, a node spelling its MAC 4,096 ways: each grew the hub without
bound before (100,000 entities on one node in half a second; 100,000 nodes and 26 MB of log in half a minute).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import hub_esp32_node.plugin
import orjson
import pytest
from esp32_testing import Recorder
from hub_esp32_node.contract import TOPIC_MAC_ATTRIBUTE
from hub_esp32_node.ingest import Esp32Ingest

from hub import EVENT_NODE_REGISTERED, EVENT_STATE_REPORTED, MATCH_ALL, Hub
from hub.testing import FakeClock

MAC = "aa:bb:cc:dd:ee:01"


def mac(i: int) -> str:
    return ":".join(f"{b:02x}" for b in (0x020000000000 + i).to_bytes(6, "big"))


@pytest.fixture
async def make_hub(hub_factory: Any, hub_clock: FakeClock) -> AsyncIterator[Any]:
    """Factory: a started hub with only this plugin and these ``hub: limits:``, and a recorder of its events."""
    made: list[Hub] = []

    async def factory(**limits: int) -> tuple[Hub, Recorder]:
        hub = await hub_factory(
            {"hub": {"limits": limits}}, builtins=(), plugins=[(hub_esp32_node.plugin, "esp32_node")], clock=hub_clock
        )
        recorder = Recorder()
        hub.bus.listen(MATCH_ALL, recorder)
        made.append(hub)
        return hub, recorder

    yield factory
    for hub in made:
        assert hub.messages.handler_errors == 0, "a handler raised into the router"


def rejected(hub: Hub, reason: str) -> float:
    return hub.metrics.value("messages_rejected", reason=reason)


def send(hub: Hub, node: str, data: dict[str, Any]) -> None:
    hub.messages.dispatch(f"devices/{node}/data", orjson.dumps(data), False)


async def test_entities_past_the_limit_are_left_out_and_the_rest_stored(make_hub) -> None:
    hub, events = await make_hub(max_entities_per_node=3)
    send(hub, MAC, {"temperature": 20, "humidity": 50})
    send(hub, MAC, {"temperature": 21, "pressure": 1000, "voltage": 3.3, "current": 0.1, "ip": "10.0.0.7"})
    example = hub.metrics.rejection_examples["entity_limit"]
    assert "2 new reading(s) left out" in example["detail"] and "max_entities_per_node 3" in example["detail"]
    send(hub, MAC, {"temperature": 22, "humidity": 51, "voltage": 3.3})

    node = hub.registry.get(MAC)
    assert list(node.entities) == ["temperature", "humidity", "pressure"]
    assert [r["states"] for r in events.of(EVENT_STATE_REPORTED)] == [
        {"temperature": 20, "humidity": 50},
        {"temperature": 21, "pressure": 1000},  # the good readings of the message that overflowed
        {"temperature": 22, "humidity": 51},
    ]
    assert node.attributes["ip"] == "10.0.0.7"
    assert rejected(hub, "entity_limit") == 2  # one per message, whatever it left out


async def test_one_mac_inventing_keys_stays_at_the_limit(make_hub) -> None:
    hub, _ = await make_hub(max_entities_per_node=50)
    for i in range(200):
        send(hub, MAC, {f"k{i}_{k}": k for k in range(100)})
    assert len(hub.registry.get(MAC).entities) == 50
    assert rejected(hub, "entity_limit") == 200


async def test_attributes_past_the_limit_are_left_out_and_the_readings_stored(make_hub) -> None:
    hub, events = await make_hub(max_attributes=8, max_attribute_bytes=100)
    send(hub, MAC, {"temperature": 20, **{f"s{i}": f"v{i}" for i in range(10)}, "blob": "x" * 200})
    node = hub.registry.get(MAC)
    assert len(node.attributes) == 8 and TOPIC_MAC_ATTRIBUTE in node.attributes and "blob" not in node.attributes
    assert events.of(EVENT_STATE_REPORTED)[0]["states"] == {"temperature": 20}
    assert rejected(hub, "attribute_limit") == 1
    send(hub, MAC, {"temperature": 21, "s0": "changed"})  # changing a kept attribute still works
    assert node.attributes["s0"] == "changed" and rejected(hub, "attribute_limit") == 1


async def test_new_nodes_past_max_nodes_are_refused_and_known_ones_keep_reporting(make_hub) -> None:
    hub, events = await make_hub(max_nodes=3)
    for i in range(10):
        send(hub, mac(i), {"temperature": i})
        send(hub, mac(0), {"temperature": 100 + i})  # a known node between the refused ones
    hub.messages.dispatch(f"devices/{mac(9)}/status", b"online", False)
    assert len(hub.registry) == 3
    assert rejected(hub, "node_limit") == 8  # seven data messages and one status
    assert [r["states"]["temperature"] for r in events.of(EVENT_STATE_REPORTED) if r["node_id"] == mac(0)] == [
        0,
        *range(100, 110),
    ]


async def test_new_nodes_a_minute_are_rate_limited_and_register_later(make_hub, hub_clock: FakeClock) -> None:
    hub, events = await make_hub(new_nodes_per_minute=5)
    for i in range(8):
        send(hub, mac(i), {"temperature": i})
    assert len(hub.registry) == 5 and rejected(hub, "node_rate_limit") == 3
    hub_clock.advance(36)  # three tokens back (one every 12 s)
    for i in range(5, 8):
        send(hub, mac(i), {"temperature": i})
    assert len(hub.registry) == 8 and len(events.of(EVENT_NODE_REGISTERED)) == 8


async def test_every_spelling_of_a_mac_is_one_node_and_one_cached_route(make_hub) -> None:
    hub, events = await make_hub()
    ingest = Esp32Ingest(hub)
    digits = "aabbccddee01"
    spellings = []
    for bits in range(300):  # 300 of the 4,096 case spellings, each in three separator styles
        cased = "".join(c.upper() if bits >> i & 1 else c for i, c in enumerate(digits))
        pairs = [cased[i : i + 2] for i in range(0, 12, 2)]
        spellings += [cased, ":".join(pairs), "-".join(pairs)]
    for spelling in spellings:
        ingest.handle_data(f"devices/{spelling}/data", b'{"temperature": 1}', False)
        ingest.handle_status(f"devices/{spelling}/status", b"online", False)
    assert len(hub.registry) == 1 and len(events.of(EVENT_NODE_REGISTERED)) == 1
    assert len(events.of(EVENT_STATE_REPORTED)) == len(spellings)
    assert ingest.cached_topics == 2  # one data and one status topic: the spelling used last
    assert hub.registry.get(MAC).attributes[TOPIC_MAC_ATTRIBUTE] == spellings[-1]


async def test_new_nodes_are_logged_rate_limited(make_hub, caplog: pytest.LogCaptureFixture) -> None:
    hub, _ = await make_hub()
    with caplog.at_level(logging.INFO):
        for i in range(200):
            send(hub, mac(i), {"temperature": i})
    assert len(hub.registry) == 200
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert lines == [f"New ESP32 node {mac(0)} registered as 'esp32-000000' (from devices/{mac(0)}/data)"]
