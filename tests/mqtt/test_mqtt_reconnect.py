"""Reconnecting when the broker goes away: a private Mosquitto (deploy/mosquitto.conf's tuning block, persistence
in a temp dir) on a free port that the test stops and starts; the shared broker on 1883 is never touched."""

from __future__ import annotations

import asyncio
import logging

import pytest
from mqtt_helpers import MQTT_ONLY, PahoPeer, collect, mqtt_config, unique

from hub.core.const import EVENT_TRANSPORT_CONNECTED, EVENT_TRANSPORT_DISCONNECTED
from hub.plugins.mqtt import DATA_MQTT
from hub.testing import wait_until

pytestmark = pytest.mark.mosquitto


def transitions(caplog) -> list[str]:
    return [
        record.getMessage().split(" (")[0].split(";")[0]
        for record in caplog.records
        if record.name == "hub.plugins.mqtt.transport"
    ]


async def test_the_hub_reconnects_after_a_broker_restart_and_resumes_its_session(
    hub_factory, private_mosquitto, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="hub.plugins.mqtt")
    broker = await private_mosquitto().async_start()
    topic = f"{unique('t')}/data"
    hub = await hub_factory({"mqtt": mqtt_config(broker.url, unique("hub"))}, builtins=MQTT_ONLY, start=False)
    received = collect(hub, topic)
    transport_events: list[str] = []
    for event_type in (EVENT_TRANSPORT_CONNECTED, EVENT_TRANSPORT_DISCONNECTED):
        hub.bus.listen(event_type, lambda event: transport_events.append(event.event_type))
    await hub.async_start()
    peer = await PahoPeer().connect(broker.port)
    await peer.publish(topic, b"before")
    await wait_until(lambda: len(received) == 1, message="the first message")
    await peer.close()

    await broker.async_stop()
    await wait_until(lambda: hub.metrics.value("mqtt_connected") == 0, message="the hub to notice")
    await asyncio.sleep(0.8)  # several failed attempts (backoff 0.05-0.2 s) while the broker is down
    await broker.async_start()
    await wait_until(lambda: hub.metrics.value("mqtt_connected") == 1, message="the reconnect")

    peer = await PahoPeer().connect(broker.port)
    await peer.publish(topic, b"after")
    await wait_until(lambda: len(received) == 2, message="a message after the restart")
    assert [payload for _, payload, _ in received] == [b"before", b"after"]
    assert transitions(caplog) == [
        f"Connected to the MQTT broker {broker.url}",
        f"Lost the connection to the MQTT broker {broker.url}",
        f"Connected to the MQTT broker {broker.url}",
    ]
    assert "resumed session" in caplog.records[-1].getMessage()  # persistence kept the session
    # what presence pauses offline detection on while the hub is deaf
    assert transport_events == [EVENT_TRANSPORT_CONNECTED, EVENT_TRANSPORT_DISCONNECTED, EVENT_TRANSPORT_CONNECTED]
    await peer.close()
    await hub.async_stop()


async def test_a_hub_started_before_its_broker_connects_when_the_broker_comes_up(
    hub_factory, private_mosquitto, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="hub.plugins.mqtt")
    broker = private_mosquitto()
    topic = f"{unique('t')}/data"
    hub = await hub_factory({"mqtt": mqtt_config(broker.url, unique("hub"))}, builtins=MQTT_ONLY, start=False)
    received = collect(hub, topic)
    await hub.async_start()  # does not fail: the broker may start after the hub (boot order)
    assert "Cannot connect to the MQTT broker" in caplog.text
    assert not hub.data[DATA_MQTT].connected
    await broker.async_start()
    await wait_until(lambda: hub.data[DATA_MQTT].connected, message="the first connection")
    peer = await PahoPeer().connect(broker.port)
    await peer.publish(topic, b"hello")
    await wait_until(lambda: len(received) == 1, message="the message")
    await peer.close()
    await hub.async_stop()
