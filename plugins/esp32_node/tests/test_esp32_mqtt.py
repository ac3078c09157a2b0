"""End to end over the real Mosquitto: paho-mqtt (and the simulator) publish, the hub's mqtt transport delivers.

The hub runs the built-in ``mqtt`` plugin plus this one, with a unique client
id and ``session_expiry: 0`` so no session is left behind on the shared broker.
Every test uses fresh random MACs and clears the retained statuses it caused.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import hub_esp32_node.plugin
import orjson
import paho.mqtt.client as paho
import pytest
from esp32_testing import Recorder, random_mac

from hub import EVENT_AVAILABILITY_REPORTED, EVENT_STATE_REPORTED, MATCH_ALL, Hub, normalize_mac
from hub.testing import BrokerAddress, FleetStats, SimulatedNode, node_macs, wait_until

pytestmark = pytest.mark.mosquitto


@pytest.fixture
async def mqtt_hub(hub_factory: Any, hub_mqtt_url: str) -> AsyncIterator[tuple[Hub, Recorder]]:
    hub = await hub_factory(
        {"mqtt": {"broker": hub_mqtt_url, "client_id": f"hub-esp32-test-{uuid.uuid4().hex[:12]}", "session_expiry": 0}},
        builtins=("hub.plugins.mqtt",),
        plugins=[(hub_esp32_node.plugin, "esp32_node")],
    )
    assert {"mqtt", "esp32_node"} <= set(hub.plugins.info), hub.plugins.failed
    recorder = Recorder()
    hub.bus.listen(MATCH_ALL, recorder)
    yield hub, recorder
    assert hub.messages.handler_errors == 0


class Publisher:
    """A paho-mqtt client (another MQTT library than the hub's) that clears the retained messages it leaves."""

    def __init__(self, hub_mqtt_url: str) -> None:
        parts = urlsplit(hub_mqtt_url)
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"esp32-test-{uuid.uuid4().hex[:12]}")
        self._client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        self._client.loop_start()
        self._retained: set[str] = set()

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        if retain:
            self._retained.add(topic)
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        await asyncio.to_thread(info.wait_for_publish, 5)

    def clean_up_retained(self, topic: str) -> None:
        """Clear ``topic``'s retained message at the end (e.g. a simulated node's status)."""
        self._retained.add(topic)

    def close(self) -> None:
        for topic in self._retained:
            self._client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def publisher(hub_mqtt_url: str) -> Iterator[Publisher]:
    publisher = Publisher(hub_mqtt_url)
    yield publisher
    publisher.close()


async def test_paho_telemetry_and_status_register_the_node(
    mqtt_hub: tuple[Hub, Recorder], publisher: Publisher
) -> None:
    hub, events = mqtt_hub
    mac = random_mac()
    node_id = normalize_mac(mac)
    # The retained status also proves the subscription is in place: it arrives whenever that happens.
    await publisher.publish(f"devices/{mac}/status", b"online", retain=True)
    await wait_until(lambda: hub.registry.get(node_id), message="the node registered")

    telemetry = {
        "timestamp": 1677610000,
        "seq": 1,
        "temperature": 25.4,
        "humidity": 65,
        "status": "online",
        "uptime": 12345,
        "free_heap": 123456,
        "wifi_rssi": -45,
        "mac_address": mac,
    }
    await publisher.publish(f"devices/{mac}/data", orjson.dumps(telemetry))
    await publisher.publish(f"devices/{mac}/data", b'{"temperature": NaN}')
    await publisher.publish(f"devices/{mac}/data", orjson.dumps({**telemetry, "seq": 2, "temperature": 25.5}))
    await publisher.publish(f"devices/{mac}/status", b"offline")

    def mine(kind: str) -> list[dict]:
        return [e for e in events.of(kind) if e["node_id"] == node_id]

    await wait_until(lambda: len(mine(EVENT_AVAILABILITY_REPORTED)) >= 2, message="online and offline reported")
    node = hub.registry.get(node_id)
    assert node is not None and node.name == f"esp32-{node_id[9:].replace(':', '')}"
    assert set(node.entities) == {"temperature", "humidity", "uptime", "free_heap", "wifi_rssi"}
    assert node.entities["temperature"].unit == "°C" and node.entities["temperature"].state == 25.5
    assert node.attributes == {"topic_mac": mac}  # "status" is reserved: ignored
    assert [r["states"]["temperature"] for r in mine(EVENT_STATE_REPORTED)] == [25.4, 25.5]
    assert [a["online"] for a in mine(EVENT_AVAILABILITY_REPORTED)] == [True, False]
    # >= : other tests may publish garbage to the shared broker meanwhile; what matters is that
    # the good messages on either side of ours both arrived.
    assert hub.metrics.value("messages_rejected", reason="not_json") >= 1


async def test_simulated_node_power_loss_reaches_the_hub_as_offline(
    mqtt_hub: tuple[Hub, Recorder], hub_mqtt_url: str, publisher: Publisher
) -> None:
    hub, events = mqtt_hub
    node = SimulatedNode(random_mac(), BrokerAddress.from_url(hub_mqtt_url), FleetStats(), interval=0.1)
    node_id = normalize_mac(node.mac)
    publisher.clean_up_retained(node.status_topic)
    assert await node.power_on()
    await wait_until(lambda: hub.registry.get(node_id), message="the node registered")
    for _ in range(3):
        assert await node.publish_telemetry()
    await wait_until(
        lambda: len([e for e in events.of(EVENT_STATE_REPORTED) if e["node_id"] == node_id]) == 3,
        message="three readings reported",
    )
    node.power_loss()

    def availability() -> list[bool]:
        return [e["online"] for e in events.of(EVENT_AVAILABILITY_REPORTED) if e["node_id"] == node_id]

    await wait_until(lambda: availability() == [True, False], message="online, then the Last Will")
    registered = hub.registry.get(node_id)
    assert registered is not None and {"temperature", "humidity", "uptime"} <= set(registered.entities)
    assert registered.firmware_version == "1.4.2"
    dedupes = [e["dedupe"] for e in events.of(EVENT_STATE_REPORTED) if e["node_id"] == node_id]
    assert len(set(dedupes)) == 3 and None not in dedupes


async def test_demo_fleet_registers_reports_loses_power_and_comes_back(
    publisher: Publisher, hub_factory: Any, hub_mqtt_url: str
) -> None:
    # `publisher` first: it is torn down last, after the hub has stopped the demo (whose nodes
    # publish a retained `offline` as they go), so it can clear those.
    seed = random.randrange(2**32)
    hub = await hub_factory(
        {
            "mqtt": {
                "broker": hub_mqtt_url,
                "client_id": f"hub-esp32-demo-{uuid.uuid4().hex[:12]}",
                "session_expiry": 0,
            },
            "esp32_node": {"demo": {"interval": 0.1, "seed": seed, "power_loss_every": 0.3, "downtime": 0.4}},
        },
        builtins=("hub.plugins.mqtt",),
        plugins=[(hub_esp32_node.plugin, "esp32_node")],
    )
    events = Recorder()
    hub.bus.listen(MATCH_ALL, events)
    macs = node_macs(seed, 3)
    node_ids = {normalize_mac(mac) for mac in macs}
    for index, mac in enumerate(macs):
        publisher.clean_up_retained(f"devices/{mac.replace(':', '').lower() if index % 4 == 3 else mac}/status")

    await hub.plugins.call_async("hub_demo", hub=hub, nodes=3)

    def availability(node_id: str) -> list[bool]:
        return [e["online"] for e in events.of(EVENT_AVAILABILITY_REPORTED) if e["node_id"] == node_id]

    # Some node loses power (the broker's LWT says offline) and boots again (its birth says online).
    await wait_until(
        lambda: any(availability(n)[:3] == [True, False, True] for n in node_ids),
        timeout=15,
        message="a node losing power and coming back",
    )
    await wait_until(
        # <=: the shared broker may carry other tests' nodes too
        lambda: node_ids <= {e["node_id"] for e in events.of(EVENT_STATE_REPORTED)},
        message="readings from every node",
    )
    assert node_ids <= {node.node_id for node in hub.registry}  # the shared broker may hold others' retained
    assert all("temperature" in hub.registry.get(n).entities for n in node_ids)  # type: ignore[union-attr]
    assert hub.messages.handler_errors == 0
