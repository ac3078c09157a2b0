"""A RabbitMQ restart mid-stream loses nothing: on a private node (the shared one is never restarted).

Messages confirmed by the broker are in a durable quorum queue; whatever the hub had
not acknowledged when the broker went down is redelivered when it returns, and what
it had committed already is dropped by storage's dedupe key.  The hub's transport
reconnects by itself (``rabbitmq_connected`` goes back to 1).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import hub_esp32_node.plugin
import pytest
from private_rabbit import PrivateRabbit, rabbitmq_installed
from rabbit_helpers import Rows, publish_amqp, queue_depth, rabbit_config, random_macs, telemetry

from hub import ROLE_WORKER
from hub.plugins.rabbitmq import DATA_RABBITMQ
from hub.testing import unavailable, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]

BUILTINS = ("hub.plugins.storage", "hub.plugins.presence", "hub.plugins.rabbitmq")
PER_NODE = 400


@pytest.fixture
async def private_rabbit(tmp_path: Path) -> AsyncIterator[PrivateRabbit]:
    if not rabbitmq_installed():
        unavailable("RabbitMQ is not installed (rabbitmq-server)")
    node = PrivateRabbit(tmp_path / "rabbit")
    await node.start()
    try:
        yield node
    finally:
        await node.kill()


async def test_a_rabbitmq_restart_mid_stream_loses_nothing(private_rabbit, hub_postgres_url, hub_factory):
    macs = random_macs(5)
    config = {
        # Batches sealed by age only: the worker takes about PREFETCH / 0.5 s, so the broker stops mid-stream.
        "storage": {"db_url": hub_postgres_url, "flush_interval": 0.5, "batch_size": 100_000},
        "rabbitmq": rabbit_config(
            private_rabbit.url, "hub", macs, prefetch=200, reconnect={"min_delay": 0.1, "max_delay": 1.0}
        ),
    }
    worker = await hub_factory(
        config, builtins=BUILTINS, plugins=[(hub_esp32_node.plugin, "esp32_node")], role=ROLE_WORKER
    )
    transport = worker.data[DATA_RABBITMQ]
    before = [(f"devices/{mac}/data", telemetry(seq)) for seq in range(PER_NODE) for mac in macs]
    after = [(f"devices/{mac}/data", telemetry(seq)) for seq in range(PER_NODE, 2 * PER_NODE) for mac in macs]
    rows = Rows(hub_postgres_url)
    try:
        await publish_amqp(private_rabbit.url, before)  # every one confirmed: the broker has them
        await rows.wait_for(1, timeout=30)
        assert await rows.total() < len(before)  # mid-stream
        await private_rabbit.stop()
        assert not transport.connected
        await private_rabbit.start()
        await wait_until(lambda: transport.connected, timeout=60, message="the hub back on RabbitMQ")
        await publish_amqp(private_rabbit.url, after)
        total = len(before) + len(after)
        assert await rows.wait_for(total, timeout=60) == total
        await worker.async_stop()
        assert await rows.total() == total
        assert await rows.distinct_seq() == total
        assert await queue_depth(private_rabbit.url, "hub.telemetry") == 0
    finally:
        await rows.close()
