"""PUBACK only after commit: what the broker redelivers depends on whether the durability barrier resolved.

The barrier is a test plugin's future; a TCP proxy between hub and Mosquitto cuts the connection abruptly
(no DISCONNECT), which is what a crash or a network failure looks like to the broker.
"""

from __future__ import annotations

import asyncio

import pytest
from mqtt_helpers import MQTT_ONLY, BarrierPlugin, PahoPeer, TcpProxy, collect, mqtt_config, unique

from hub.plugins.mqtt import DATA_MQTT
from hub.testing import wait_until

pytestmark = pytest.mark.mosquitto


@pytest.fixture
async def proxy():
    proxy = await TcpProxy(1883).start()
    yield proxy
    await proxy.close()


async def hub_with_barrier(hub_factory, url: str, client_id: str, topic: str, barrier: BarrierPlugin, **overrides):
    hub = await hub_factory(
        {"mqtt": mqtt_config(url, client_id, **overrides)},
        builtins=MQTT_ONLY,
        plugins=[(barrier, "barrier")],
        start=False,
    )
    received = collect(hub, topic)
    await hub.async_start()
    return hub, received


async def reconnected(hub, proxy: TcpProxy) -> None:
    """Cut the connection and wait until the hub is connected again (through the proxy)."""
    transport = hub.data[DATA_MQTT]
    before = hub.metrics.value("mqtt_connections")
    proxy.drop()
    await wait_until(
        lambda: hub.metrics.value("mqtt_connections") > before and transport.connected, message="reconnect"
    )


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_an_uncommitted_message_is_redelivered_and_a_committed_one_is_not(
    hub_factory, hub_mqtt_url, proxy, protocol
) -> None:
    topic, client_id = f"{unique('t')}/data", unique("hub")
    barrier = BarrierPlugin()
    hub, received = await hub_with_barrier(hub_factory, proxy.url, client_id, topic, barrier, protocol=protocol)
    peer = await PahoPeer().connect(1883)
    barrier.hold()
    await peer.publish(topic, b"m1")
    await wait_until(lambda: len(received) == 1, message="the message")

    await reconnected(hub, proxy)  # the barrier is unresolved: no PUBACK went out
    await wait_until(lambda: len(received) == 2, message="the redelivery")
    assert received[1][:2] == (topic, b"m1")

    barrier.commit()  # both copies' handlers finish; only the one on the live connection acknowledges
    await wait_until(lambda: hub.data[DATA_MQTT].inflight == 0, message="the handlers")
    assert hub.metrics.value("mqtt_acks_withheld") == 1
    await peer.publish(topic, b"m2")  # its PUBACK follows m1's on the same connection
    await wait_until(lambda: len(received) == 3, message="m2")
    await asyncio.sleep(0.1)

    await reconnected(hub, proxy)
    await peer.publish(topic, b"m3")  # anything still unacknowledged would arrive before it
    await wait_until(lambda: len(received) == 4, message="m3")
    assert [payload for _, payload, _ in received] == [b"m1", b"m1", b"m2", b"m3"]
    await hub.async_stop()
    await peer.close()
    if protocol == "3.1.1":
        await PahoPeer(client_id).connect(1883)  # remove the 3.1.1 session from the shared broker


async def test_a_hub_stopping_before_the_commit_leaves_the_message_to_the_next_run(hub_factory, hub_mqtt_url) -> None:
    topic, client_id = f"{unique('t')}/data", unique("hub")
    barrier = BarrierPlugin(fail_on_stop=True)
    first, received = await hub_with_barrier(hub_factory, hub_mqtt_url, client_id, topic, barrier)
    peer = await PahoPeer().connect(1883)
    barrier.hold()
    await peer.publish(topic, b"pending")
    await wait_until(lambda: len(received) == 1, message="the message")
    await first.async_stop()  # storage (the test plugin) fails the barrier: nothing was committed
    assert first.metrics.value("mqtt_acks_withheld") == 1

    second, again = await hub_with_barrier(hub_factory, hub_mqtt_url, client_id, topic, BarrierPlugin())
    await wait_until(lambda: len(again) == 1, message="the redelivery to the next run")
    assert again[0][:2] == (topic, b"pending")
    await second.async_stop()  # acknowledged now
    _third, never = await hub_with_barrier(hub_factory, hub_mqtt_url, client_id, topic, BarrierPlugin())
    await peer.publish(topic, b"after")
    await wait_until(lambda: len(never) == 1, message="the next message")
    assert never[0][1] == b"after"
    await peer.close()


async def test_stop_waits_for_in_flight_messages_to_commit(hub_factory, hub_mqtt_url) -> None:
    topic, client_id = f"{unique('t')}/data", unique("hub")
    barrier = BarrierPlugin()
    hub, received = await hub_with_barrier(hub_factory, hub_mqtt_url, client_id, topic, barrier)
    peer = await PahoPeer().connect(1883)
    barrier.hold()
    await peer.publish(topic, b"m1")
    await wait_until(lambda: len(received) == 1, message="the message")
    stopping = asyncio.ensure_future(hub.async_stop())
    await asyncio.sleep(0.1)
    assert not stopping.done()  # hub_stop waits for the commit (storage flushes by age meanwhile)
    barrier.commit()
    await stopping
    assert hub.metrics.value("mqtt_acks_withheld") == 0

    _again, redelivered = await hub_with_barrier(hub_factory, hub_mqtt_url, client_id, topic, BarrierPlugin())
    await peer.publish(topic, b"m2")
    await wait_until(lambda: len(redelivered) == 1, message="m2")
    assert redelivered[0][1] == b"m2"  # m1 was acknowledged before the disconnect
    await peer.close()


async def test_a_failed_commit_while_running_reconnects_so_the_broker_redelivers(hub_factory, hub_mqtt_url) -> None:
    topic, client_id = f"{unique('t')}/data", unique("hub")
    barrier = BarrierPlugin()
    hub, received = await hub_with_barrier(hub_factory, hub_mqtt_url, client_id, topic, barrier)
    peer = await PahoPeer().connect(1883)
    barrier.hold()
    await peer.publish(topic, b"m1")
    await wait_until(lambda: len(received) == 1, message="the message")
    barrier.fail()
    await wait_until(lambda: len(received) == 2, message="the redelivery after the reconnect")
    assert received[1][:2] == (topic, b"m1")
    assert hub.metrics.value("mqtt_connections") == 2
    await peer.close()


async def test_a_whole_batch_is_acknowledged_at_its_commit(hub_factory, hub_mqtt_url, proxy) -> None:
    topic, client_id, count = f"{unique('t')}/data", unique("hub"), 300
    barrier = BarrierPlugin()
    hub, received = await hub_with_barrier(hub_factory, proxy.url, client_id, topic, barrier)
    peer = await PahoPeer().connect(1883)
    barrier.hold()
    infos = [peer.client.publish(topic, str(n), qos=1) for n in range(count)]
    await asyncio.to_thread(infos[-1].wait_for_publish, 10)
    await wait_until(lambda: len(received) == count, message="the batch")
    assert hub.data[DATA_MQTT].inflight == count  # all waiting for the one commit (receive_maximum 10000)
    barrier.commit()
    await wait_until(lambda: hub.data[DATA_MQTT].inflight == 0, message="the handlers")
    await asyncio.sleep(0.1)
    await reconnected(hub, proxy)
    await peer.publish(topic, b"last")
    await wait_until(lambda: received[-1][1] == b"last", message="the last message")
    assert len(received) == count + 1  # nothing of the batch came back
    await peer.close()


async def test_storage_behind_stops_reading_and_the_broker_keeps_the_rest(hub_factory, hub_mqtt_url) -> None:
    """While storage reports a backlog the hub reads no more from its connection: the broker keeps the messages
    (no refusal, no reconnect), and they all arrive once it has caught up."""
    topic, client_id, count = f"{unique('t')}/data", unique("hub"), 2000
    barrier = BarrierPlugin()
    hub, received = await hub_with_barrier(hub_factory, hub_mqtt_url, client_id, topic, barrier)
    transport = hub.data[DATA_MQTT]
    peer = await PahoPeer().connect(1883)
    # One message through first: the subscription is acknowledged and its SUBACK read, so the first read
    # after the backlog begins holds publishes (a late SUBACK read alone would pause the hub with none).
    await asyncio.to_thread(peer.client.publish(topic, b"first", qos=1).wait_for_publish, 20)
    await wait_until(lambda: received, message="the message before the backlog")
    barrier.backlog = asyncio.get_running_loop().create_future()
    payload = b"x" * 1024  # 2 MB in all: far more than the hub's read buffer
    infos = [peer.client.publish(topic, payload, qos=1) for _ in range(count)]
    await asyncio.to_thread(infos[-1].wait_for_publish, 20)  # the broker holds every message
    await wait_until(lambda: len(received) > 1, message="the first chunk")
    reading = transport._client._connection._transport.is_reading
    await wait_until(lambda: not reading(), message="the hub to stop reading")
    assert len(received) < count // 2  # what one read's worth holds, not the rest
    backlog, barrier.backlog = barrier.backlog, None
    backlog.set_result(None)
    await wait_until(lambda: len(received) == count + 1, timeout=30, message="the rest once storage caught up")
    assert hub.metrics.value("mqtt_connections") == 1  # nothing refused, no reconnect to get it redelivered
    await peer.close()
