"""The node simulator against the real Mosquitto, observed by an independent paho-mqtt subscriber."""

from __future__ import annotations

import random

import orjson
import pytest
from esp32_testing import Observer
from gmqtt.mqtt.constants import MQTTv50

from hub import normalize_mac
from hub.testing import BrokerAddress, Fleet, FleetStats, SimulatedNode, node_macs, wait_until


def test_macs_are_deterministic_distinct_and_valid() -> None:
    macs = node_macs(7, 50)
    assert macs == node_macs(7, 50)
    assert node_macs(8, 50) != macs
    assert len(set(macs)) == 50
    assert all(normalize_mac(mac).upper() == mac for mac in macs)


def test_broker_urls() -> None:
    assert BrokerAddress.from_url("mqtt://127.0.0.1") == BrokerAddress("127.0.0.1", 1883)
    assert BrokerAddress.from_url("mqtts://u%40x:p%3Aw@host:9000") == BrokerAddress("host", 9000, True, "u@x", "p:w")
    with pytest.raises(ValueError):
        BrokerAddress.from_url("http://host")


@pytest.mark.mosquitto
async def test_three_nodes_birth_report_and_stop_gracefully(hub_mqtt_url: str, observer: Observer) -> None:
    fleet = Fleet(hub_mqtt_url, 3, interval=0.2, seed=random.randrange(2**32))
    observer.watch(*(node.topic_mac for node in fleet.nodes))

    await fleet.run(duration=2.0)

    await wait_until(
        lambda: sum(len(observer.of(n.data_topic)) for n in fleet.nodes) == fleet.stats.sent,
        message="every telemetry message at the observer",
    )
    # Birth, then the graceful goodbye (published just before DISCONNECT, so it may still be on its way).
    await wait_until(
        lambda: all(observer.of(n.status_topic) == [b"online", b"offline"] for n in fleet.nodes),
        message="online then offline from every node",
    )
    for node in fleet.nodes:
        reports = [orjson.loads(p) for p in observer.of(node.data_topic)]
        assert len(reports) >= 5
        assert [r["seq"] for r in reports] == list(range(1, len(reports) + 1))
        assert {r["mac_address"] for r in reports} == {node.mac}
        assert all(15 < r["temperature"] < 30 and 0 <= r["humidity"] <= 100 and r["wifi_rssi"] < 0 for r in reports)
        assert [r["uptime"] for r in reports] == sorted(r["uptime"] for r in reports)
    assert fleet.stats.connect_failures == 0 and fleet.stats.skipped == 0
    assert fleet.connected() == 0


@pytest.mark.mosquitto
async def test_power_loss_makes_the_broker_publish_the_retained_lwt(hub_mqtt_url: str, observer: Observer) -> None:
    node = SimulatedNode(node_macs(random.randrange(2**32), 1)[0], BrokerAddress.from_url(hub_mqtt_url), FleetStats())
    observer.watch(node.topic_mac)
    assert await node.power_on()
    assert await node.publish_telemetry()
    await wait_until(lambda: len(observer.of(node.data_topic)) == 1, message="the first telemetry")

    node.power_loss()

    await wait_until(lambda: observer.of(node.status_topic) == [b"online", b"offline"], message="online then offline")
    assert not node.connected
    # The Will was retained: a subscriber arriving now (a hub starting up) learns the node is offline.
    late = Observer(hub_mqtt_url)
    try:
        late.watch(node.topic_mac)
        await wait_until(
            lambda: late.messages == [(node.status_topic, b"offline", True)], message="the retained Last Will"
        )
    finally:
        late.close()
    # Power back: a fresh boot, seq and uptime from zero, a new birth.
    assert await node.power_on()
    assert await node.publish_telemetry()
    await wait_until(lambda: len(observer.of(node.data_topic)) == 2, message="the second telemetry")
    assert orjson.loads(observer.of(node.data_topic)[1])["seq"] == 1
    assert observer.of(node.status_topic)[-1] == b"online"
    await node.stop()


@pytest.mark.mosquitto
async def test_burst_past_the_brokers_receive_maximum_waits_instead_of_failing(
    hub_mqtt_url: str, observer: Observer
) -> None:
    # Mosquitto advertises a receive maximum of 20 to MQTT 5 clients; gmqtt raises OverflowError past it.
    stats = FleetStats()
    node = SimulatedNode(
        node_macs(random.randrange(2**32), 1)[0], BrokerAddress.from_url(hub_mqtt_url), stats, protocol=MQTTv50
    )
    observer.watch(node.topic_mac)
    assert await node.power_on()
    for _ in range(300):
        assert await node.publish_telemetry()
    await wait_until(lambda: len(observer.of(node.data_topic)) == 300, message="all 300 messages at the observer")
    await node.stop()

    assert stats.throttled > 0
    assert [orjson.loads(p)["seq"] for p in observer.of(node.data_topic)] == list(range(1, 301))
