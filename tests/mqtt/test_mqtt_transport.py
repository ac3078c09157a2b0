"""The mqtt plugin against the real Mosquitto on 127.0.0.1:1883, with paho-mqtt as the other side."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
from mqtt_helpers import MQTT_ONLY, PahoPeer, collect, mqtt_config, unique

from hub.core.const import DATA_BROKER_URL
from hub.core.errors import HubStateError
from hub.core.roles import ROLE_CLI
from hub.plugins.mqtt import DATA_MQTT
from hub.testing import wait_until

pytestmark = pytest.mark.mosquitto


def port_of(url: str) -> int:
    return urlsplit(url).port or 1883


async def start_hub(hub_factory, url: str, client_id: str, filters: dict[str, list], **overrides):
    """A hub with only the mqtt plugin, subscribed (before start) to each filter, collecting into its list."""
    hub = await hub_factory({"mqtt": mqtt_config(url, client_id, **overrides)}, builtins=MQTT_ONLY, start=False)
    for topic_filter in filters:
        filters[topic_filter] = collect(hub, topic_filter)
    await hub.async_start()
    return hub


async def test_paho_messages_reach_router_handlers_including_wildcards(hub_factory, hub_mqtt_url) -> None:
    prefix = unique("t")
    filters = {f"{prefix}/+/data": [], f"{prefix}/#": [], f"{prefix}/a/status": []}
    hub = await start_hub(hub_factory, hub_mqtt_url, unique("hub"), filters)
    peer = await PahoPeer().connect(port_of(hub_mqtt_url))
    await peer.publish(f"{prefix}/a/data", b'{"t": 1}')
    await peer.publish(f"{prefix}/b/data", b'{"t": 2}', qos=0)
    await peer.publish(f"{prefix}/a/status", b"online")
    await wait_until(lambda: len(filters[f"{prefix}/#"]) == 3, message="three messages")
    assert filters[f"{prefix}/+/data"] == [
        (f"{prefix}/a/data", b'{"t": 1}', False),
        (f"{prefix}/b/data", b'{"t": 2}', False),
    ]
    assert filters[f"{prefix}/a/status"] == [(f"{prefix}/a/status", b"online", False)]
    assert hub.metrics.value("mqtt_messages_received") == 3
    assert hub.metrics.value("mqtt_connected") == 1
    await peer.close()


async def test_retained_flag_is_passed(hub_factory, hub_mqtt_url) -> None:
    topic = f"{unique('t')}/node/status"
    peer = await PahoPeer().connect(port_of(hub_mqtt_url))
    await peer.publish(topic, b"online", retain=True)
    filters = {topic: []}
    await start_hub(hub_factory, hub_mqtt_url, unique("hub"), filters)
    await wait_until(lambda: len(filters[topic]) == 1, message="the retained message")
    await peer.publish(topic, b"offline")
    await wait_until(lambda: len(filters[topic]) == 2, message="the live message")
    assert filters[topic] == [(topic, b"online", True), (topic, b"offline", False)]
    await peer.publish(topic, b"", retain=True)  # clear the retained message on the shared broker
    await peer.close()


async def test_publish_through_the_router_reaches_a_paho_subscriber(hub_factory, hub_mqtt_url) -> None:
    prefix = unique("t")
    hub = await start_hub(hub_factory, hub_mqtt_url, unique("hub"), {})
    peer = await PahoPeer().connect(port_of(hub_mqtt_url))
    await peer.subscribe(f"{prefix}/#")
    await hub.messages.publish(f"{prefix}/cmd", b'{"message_id": "1"}', qos=1)
    await hub.messages.publish(f"{prefix}/state", "on", qos=0, retain=True)
    await wait_until(lambda: len(peer.messages) == 2, message="two messages at paho")
    assert [(m.topic, m.payload, m.qos) for m in peer.messages] == [
        (f"{prefix}/cmd", b'{"message_id": "1"}', 1),
        (f"{prefix}/state", b"on", 0),
    ]
    late = await PahoPeer().connect(port_of(hub_mqtt_url))
    await late.subscribe(f"{prefix}/state")
    await wait_until(lambda: len(late.messages) == 1, message="the retained state")
    assert late.messages[0].retain
    await hub.messages.publish(f"{prefix}/state", b"", retain=True)
    await peer.close()
    await late.close()


async def test_publish_refuses_wildcards_and_a_missing_connection(hub_factory, hub_mqtt_url) -> None:
    hub = await start_hub(hub_factory, hub_mqtt_url, unique("hub"), {})
    with pytest.raises(ValueError, match="wildcards"):
        await hub.messages.publish("devices/+/commands", b"x")
    await hub.async_stop()
    with pytest.raises(HubStateError):
        await hub.messages.publish("devices/x/commands", b"x")


async def test_filters_added_while_running_are_subscribed(hub_factory, hub_mqtt_url) -> None:
    prefix = unique("t")
    hub = await start_hub(hub_factory, hub_mqtt_url, unique("hub"), {})
    received = collect(hub, f"{prefix}/late/#")
    peer = await PahoPeer().connect(port_of(hub_mqtt_url))
    await wait_until(lambda: f"{prefix}/late/#" in hub.data[DATA_MQTT]._broker_filters, message="the subscription")
    # The SUBACK may still be on its way: publish until the broker routes one to the hub.

    async def published_and_received() -> bool:
        await peer.publish(f"{prefix}/late/x", b"1")
        return bool(received)

    await wait_until(published_and_received, message="a message on the late filter", interval=0.05)
    assert received[0][:2] == (f"{prefix}/late/x", b"1")
    await peer.close()


async def test_a_burst_of_topics_added_while_running_is_subscribed_in_one_go(hub_factory, hub_mqtt_url) -> None:
    """A discovery plugin adds hundreds of topics at once: more than the broker's in-flight window (20) allows
    SUBSCRIBE packets for, so they must go out together.  Retained messages prove each subscription."""
    prefix = unique("t")
    topics = [f"{prefix}/n{number}/state" for number in range(300)]
    peer = await PahoPeer().connect(port_of(hub_mqtt_url))
    for topic in topics:
        await peer.publish(topic, b"1", retain=True)
    hub = await start_hub(hub_factory, hub_mqtt_url, unique("hub"), {})
    received = [collect(hub, topic) for topic in topics]
    await wait_until(lambda: all(received), message="the retained message of every topic")
    assert sum(map(len, received)) == 300
    for topic in topics:
        await peer.publish(topic, b"", retain=True)
    await peer.close()


async def test_messages_published_while_the_hub_is_down_arrive_after_restart(hub_factory, hub_mqtt_url) -> None:
    topic_filter, client_id = f"{unique('t')}/+/data", unique("hub")
    first = await start_hub(hub_factory, hub_mqtt_url, client_id, {topic_filter: []})
    await first.async_stop()
    peer = await PahoPeer().connect(port_of(hub_mqtt_url))
    for number in range(5):
        await peer.publish(topic_filter.replace("+", f"n{number}"), str(number).encode())
    filters = {topic_filter: []}
    second = await start_hub(hub_factory, hub_mqtt_url, client_id, filters)
    await wait_until(lambda: len(filters[topic_filter]) == 5, message="the five queued messages")
    assert [payload for _, payload, _ in filters[topic_filter]] == [b"0", b"1", b"2", b"3", b"4"]
    assert second.data[DATA_MQTT].connected
    await peer.close()


async def test_the_hub_also_speaks_mqtt_311(hub_factory, hub_mqtt_url) -> None:
    topic = f"{unique('t')}/x"
    filters = {topic: []}
    client_id = unique("hub")
    hub = await start_hub(hub_factory, hub_mqtt_url, client_id, filters, protocol="3.1.1")
    peer = await PahoPeer().connect(port_of(hub_mqtt_url))
    await peer.publish(topic, b"v311")
    await wait_until(lambda: len(filters[topic]) == 1, message="the message")
    await hub.async_stop()
    await peer.close()
    await PahoPeer(client_id).connect(port_of(hub_mqtt_url))  # a clean session removes the 3.1.1 session again


async def test_credentials_never_reach_the_log(hub_factory, hub_mqtt_url, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "pw-" + unique("s")
    url = f"mqtt://hubuser:{secret}@127.0.0.1:{port_of(hub_mqtt_url)}"
    hub = await start_hub(hub_factory, url, unique("hub"), {})
    assert hub.data[DATA_BROKER_URL] == url  # simulators connect to the same broker, with the same account
    await hub.async_stop()
    assert "Connected to the MQTT broker mqtt://127.0.0.1:1883" in caplog.text
    assert secret not in caplog.text


async def test_cli_role_connects_to_nothing(hub_factory, hub_mqtt_url) -> None:
    hub = await hub_factory({"mqtt": mqtt_config(hub_mqtt_url, unique("hub"))}, builtins=MQTT_ONLY, role=ROLE_CLI)
    assert DATA_MQTT not in hub.data


async def test_overlapping_filters_deliver_each_message_once(hub_factory, hub_mqtt_url) -> None:
    prefix = unique("t")
    filters = {f"{prefix}/+/data": [], f"{prefix}/#": []}
    hub = await start_hub(hub_factory, hub_mqtt_url, unique("hub"), filters)
    assert hub.data[DATA_MQTT]._broker_filters == {f"{prefix}/#": 1}
    peer = await PahoPeer().connect(port_of(hub_mqtt_url))
    await peer.publish(f"{prefix}/n1/data", b"once")
    await peer.publish(f"{prefix}/n1/end", b"end")
    await wait_until(lambda: len(filters[f"{prefix}/#"]) == 2, message="both messages")
    assert filters[f"{prefix}/+/data"] == [(f"{prefix}/n1/data", b"once", False)]
    assert hub.metrics.value("mqtt_messages_received") == 2
    await peer.close()


async def test_a_later_run_unsubscribes_what_the_session_kept_from_an_earlier_one(
    hub_factory, hub_mqtt_url, tmp_path
) -> None:
    prefix, client_id = unique("t"), unique("hub")
    data_dir = {"hub": {"data_dir": str(tmp_path / "data")}}
    first = await hub_factory(
        {**data_dir, "mqtt": mqtt_config(hub_mqtt_url, client_id)}, builtins=MQTT_ONLY, start=False
    )
    collect(first, f"{prefix}/+/data")
    await first.async_start()
    await first.async_stop()
    second = await hub_factory(
        {**data_dir, "mqtt": mqtt_config(hub_mqtt_url, client_id)}, builtins=MQTT_ONLY, start=False
    )
    received = collect(second, f"{prefix}/#")
    await second.async_start()
    peer = await PahoPeer().connect(port_of(hub_mqtt_url))
    await peer.publish(f"{prefix}/n1/data", b"1")
    await peer.publish(f"{prefix}/n1/end", b"2")
    await wait_until(lambda: len(received) >= 2, message="the messages")
    await peer.publish(f"{prefix}/n1/end", b"3")  # ordered after any duplicate of the first message
    await wait_until(lambda: received[-1][1] == b"3", message="the last message")
    assert [payload for _, payload, _ in received] == [b"1", b"2", b"3"]
    await peer.close()
