"""Workers on the real RabbitMQ and PostgreSQL: competing consumers share a load and store every message once; a
command goes out through amq.topic and RabbitMQ's MQTT plugin to a simulated node and its answer comes back."""

from __future__ import annotations

import uuid

import hub_esp32_node.plugin
import paho.mqtt.client as paho
import pytest
from rabbit_helpers import Rows, queue_depth, rabbit_config, random_macs, telemetry

from hub import ROLE_WORKER, STATUS_ONLINE
from hub.core.commands import SUCCEEDED
from hub.plugins.rabbitmq import DATA_RABBITMQ
from hub.testing import BrokerAddress, FleetStats, SimulatedNode, wait_until

pytestmark = pytest.mark.rabbitmq

BUILTINS = ("hub.plugins.storage", "hub.plugins.presence", "hub.plugins.rabbitmq")
PLUGINS = [(hub_esp32_node.plugin, "esp32_node")]


def mqtt_publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 to RabbitMQ's MQTT plugin, as nodes do, and wait until the broker acknowledged each."""
    address = BrokerAddress.from_url(url)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(100)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=30)
            assert info.is_published()
    finally:
        client.loop_stop()
        client.disconnect()


async def test_two_workers_share_the_load_and_store_every_message_once(
    amqp_url, rabbit_mqtt_url, prefix, hub_postgres_url, hub_factory
):
    macs = random_macs(10)
    config = {
        "storage": {"db_url": hub_postgres_url, "flush_interval": 0.05},
        "rabbitmq": rabbit_config(amqp_url, prefix, macs, prefetch=100),
    }
    workers = [await hub_factory(config, builtins=BUILTINS, plugins=PLUGINS, role=ROLE_WORKER) for _ in range(2)]
    messages = [(f"devices/{mac}/data", telemetry(seq)) for seq in range(200) for mac in macs]
    mqtt_publish(rabbit_mqtt_url, messages)
    rows = Rows(hub_postgres_url)
    try:
        assert await rows.wait_for(len(messages)) == len(messages)
        for worker in workers:
            await worker.async_stop()
        assert await rows.total() == len(messages)
        assert await rows.distinct_seq() == len(messages)
        received = [w.metrics.registry.get_sample_value("hub_rabbitmq_messages_received_total") for w in workers]
        assert sum(received) == len(messages) and min(received) > 0, received  # both took a share
        assert await queue_depth(amqp_url, f"{prefix}.telemetry") == 0  # all acknowledged
    finally:
        await rows.close()


async def test_a_command_reaches_a_simulated_node_through_the_mqtt_plugin_and_its_answer_comes_back(
    amqp_url, rabbit_mqtt_url, prefix, hub_postgres_url, hub_factory
):
    [mac] = random_macs(1)
    config = {"storage": {"db_url": hub_postgres_url}, "rabbitmq": rabbit_config(amqp_url, prefix, [mac])}
    hub = await hub_factory(config, builtins=BUILTINS, plugins=PLUGINS)
    node = SimulatedNode(mac, BrokerAddress.from_url(rabbit_mqtt_url), FleetStats())
    assert await node.power_on()
    try:
        assert await node.publish_telemetry()
        node_id = mac.lower()
        await wait_until(lambda: (n := hub.registry.get(node_id)) is not None and n.status == STATUS_ONLINE)
        command = hub.commands.submit(node_id, "STATUS_REQUEST", sender="test")
        done = await hub.commands.wait_done(command.id, timeout=20)
        assert done.status == SUCCEEDED, done.history
        assert [step[0] for step in done.history] == ["queued", "sent", "delivered", "acknowledged", "succeeded"]
        assert hub.data[DATA_RABBITMQ].connected
    finally:
        await node.commands.close()
        await node.stop()
