"""Topology against the real RabbitMQ: declared idempotently, a conflicting queue named with its argument, poison
messages dead-lettered after the delivery limit."""

from __future__ import annotations

import aio_pika
import pytest
from rabbit_helpers import publish_amqp, queue_depth, rabbit_config, random_macs

from hub import Hub, Manifest, StartupError, hookimpl
from hub.plugins.rabbitmq import DATA_RABBITMQ
from hub.plugins.rabbitmq.config import CONFIG_SCHEMA, queue_arguments
from hub.testing import wait_until

pytestmark = pytest.mark.rabbitmq

BUILTINS = ("hub.plugins.storage", "hub.plugins.presence", "hub.plugins.rabbitmq")


async def test_the_topology_is_declared_and_declaring_it_again_changes_nothing(amqp_url, prefix, hub_factory):
    macs = random_macs(1)
    config = {"rabbitmq": rabbit_config(amqp_url, prefix, macs)}
    first = await hub_factory(config, builtins=BUILTINS)
    second = await hub_factory(config, builtins=BUILTINS)  # a second process declares the same: a no-op
    for hub in (first, second):
        assert hub.data[DATA_RABBITMQ].connected
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        arguments = queue_arguments(CONFIG_SCHEMA(config["rabbitmq"]), "telemetry")
        assert arguments["x-queue-type"] == "quorum" and arguments["x-overflow"] == "reject-publish"
        # Declaring with exactly these arguments succeeds only if the broker's queue has them all.
        await channel.declare_queue(f"{prefix}.telemetry", durable=True, arguments=arguments)
        for name in ("telemetry", "status", "acks", "dead-letter"):
            await channel.declare_queue(f"{prefix}.{name}", passive=True)
        await channel.declare_exchange(f"{prefix}.events", passive=True)
    finally:
        await connection.close()


async def test_a_queue_with_other_arguments_is_a_clear_startup_error(amqp_url, prefix, hub_factory):
    macs = random_macs(1)
    await hub_factory({"rabbitmq": rabbit_config(amqp_url, prefix, macs, max_length=20)}, builtins=BUILTINS)
    with pytest.raises(StartupError) as caught:
        await hub_factory({"rabbitmq": rabbit_config(amqp_url, prefix, macs, max_length=10)}, builtins=BUILTINS)
    message = str(caught.value)
    assert f"'{prefix}.telemetry'" in message
    assert "x-max-length = 20" in message and "x-max-length = 10" in message
    assert "rabbitmqctl delete_queue" in message


async def test_a_queue_argument_from_config_yaml_reaches_the_broker(amqp_url, prefix, hub_factory):
    macs = random_macs(1)
    queues = rabbit_config(amqp_url, prefix, macs)["queues"]
    queues["telemetry"]["arguments"] = {"x-max-length-bytes": 5_000_000}
    config = {"rabbitmq": {**rabbit_config(amqp_url, prefix, macs), "queues": queues}}
    await hub_factory(config, builtins=BUILTINS)
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed, match="x-max-length-bytes"):
            arguments = {**queue_arguments(CONFIG_SCHEMA(config["rabbitmq"]), "telemetry")}
            arguments["x-max-length-bytes"] = 4_000_000
            await channel.declare_queue(f"{prefix}.telemetry", durable=True, arguments=arguments)
    finally:
        await connection.close()


class Poisoned:
    """A plugin whose handler fails on one payload: a bug the message would otherwise hit for ever."""

    MANIFEST = Manifest(name="poisoned")

    def __init__(self, topic_filter: str) -> None:
        self.filter = topic_filter
        self.calls: dict[bytes, int] = {}

    @hookimpl
    def hub_setup(self, hub: Hub) -> None:
        hub.messages.subscribe(self.filter, self.handle)

    def handle(self, topic: str, payload: bytes, retained: bool) -> None:
        self.calls[payload] = self.calls.get(payload, 0) + 1
        if payload == b"poison":
            raise ValueError("cannot handle this")


async def test_a_poison_message_is_dead_lettered_after_the_delivery_limit(amqp_url, prefix, hub_factory):
    topic_filter = f"{prefix}/+/data"
    config = rabbit_config(amqp_url, prefix, [], delivery_limit=2)
    config["queues"] = {"telemetry": {"bindings": [topic_filter]}}
    poisoned = Poisoned(topic_filter)
    hub = await hub_factory({"rabbitmq": config}, builtins=BUILTINS, plugins=[(poisoned, "poisoned")])
    await publish_amqp(amqp_url, [(f"{prefix}/a/data", b"poison"), (f"{prefix}/a/data", b"good-1")])
    await wait_until(lambda: poisoned.calls.get(b"good-1") == 1, timeout=20)

    async def dead_lettered() -> int:
        return await queue_depth(amqp_url, f"{prefix}.dead-letter")

    await wait_until(dead_lettered, timeout=20, interval=0.2, message="the poison message in the dead-letter queue")
    calls = poisoned.calls[b"poison"]
    assert 2 <= calls <= 3  # the first delivery and its redeliveries up to the limit, then no more
    # Not looping: a message published after it was dead-lettered goes through while the poison stays out.
    await publish_amqp(amqp_url, [(f"{prefix}/a/data", b"good-2")])
    await wait_until(lambda: poisoned.calls.get(b"good-2") == 1, timeout=20)
    assert poisoned.calls[b"poison"] == calls
    assert await queue_depth(amqp_url, f"{prefix}.telemetry") == 0
    assert await dead_lettered() == 1
    rejected = hub.metrics.registry.get_sample_value("hub_rabbitmq_messages_rejected_total", {"reason": "poison"})
    assert rejected == calls


async def test_handled_messages_are_acknowledged(amqp_url, prefix, hub_factory):
    """Acknowledged, not merely taken: once the hub stops, nothing goes back to the queue."""
    topic_filter = f"{prefix}/+/data"
    config = rabbit_config(amqp_url, prefix, [])
    config["queues"] = {"telemetry": {"bindings": [topic_filter]}}
    plugin = Poisoned(topic_filter)
    hub = await hub_factory({"rabbitmq": config}, builtins=BUILTINS, plugins=[(plugin, "poisoned")])
    await publish_amqp(amqp_url, [(f"{prefix}/a/data", b"m%d" % i) for i in range(50)])
    await wait_until(lambda: len(plugin.calls) == 50, timeout=20)
    await hub.async_stop()
    assert await queue_depth(amqp_url, f"{prefix}.telemetry") == 0
    assert sum(plugin.calls.values()) == 50
