"""kill -9 of a ``hub run --role worker`` mid-batch: nothing lost, nothing stored twice.

The worker runs as a real process against the real RabbitMQ and PostgreSQL.  Every
message is published (and acknowledged by RabbitMQ's MQTT plugin) before the worker is
killed, and the worker's prefetch is far below the load, so at the kill it holds a full
window of deliveries it has not acknowledged (batches are sealed by age only, so most
of the time the window is in the open batch or the one being committed).  RabbitMQ takes them back; a second worker gets them, and what the
first had committed already is dropped by storage's ``(node, dedupe)`` key.  The kill
comes once the database holds part of the load (a condition, not a delay).
"""

from __future__ import annotations

import asyncio

import pytest
import yaml
from rabbit_helpers import Rows, queue_depth, rabbit_config, random_macs, telemetry
from test_rabbitmq_workers import mqtt_publish

from hub.testing import HubProcess

pytestmark = [pytest.mark.slow, pytest.mark.rabbitmq]

MESSAGES_PER_NODE = 600
NODES = 5
PREFETCH = 300
KILL_AFTER = 800


async def test_a_worker_killed_mid_batch_loses_nothing_and_stores_nothing_twice(
    amqp_url, rabbit_mqtt_url, prefix, hub_postgres_url, tmp_path
):
    macs = random_macs(NODES)
    total = NODES * MESSAGES_PER_NODE
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "hub": {"data_dir": str(tmp_path / "data"), "name": "worker"},
                # A batch is sealed by age only, so the worker holds a full prefetch window
                # of unacknowledged deliveries most of the time (throughput ~ PREFETCH / 0.5 s).
                "storage": {"db_url": hub_postgres_url, "flush_interval": 0.5, "batch_size": 100_000},
                "rabbitmq": rabbit_config(amqp_url, prefix, macs, prefetch=PREFETCH),
            }
        )
    )
    rows = Rows(hub_postgres_url)
    first = HubProcess(config, "--role", "worker", plugins="esp32_node")
    second: HubProcess | None = None
    try:
        await first.running(timeout=180)  # imports and migrations on a busy 2-core machine
        messages = [(f"devices/{mac}/data", telemetry(seq)) for seq in range(MESSAGES_PER_NODE) for mac in macs]
        await asyncio.to_thread(mqtt_publish, rabbit_mqtt_url, messages)  # all accepted by the broker
        stored = await rows.wait_for(KILL_AFTER, timeout=60)
        assert KILL_AFTER <= stored < total, stored
        first.kill()
        at_kill = await rows.total()
        waiting = await queue_depth(amqp_url, f"{prefix}.telemetry")
        assert at_kill + waiting >= total  # nothing vanished with the worker: stored or back in the queue
        second = HubProcess(config, "--role", "worker", plugins="esp32_node")
        await second.running(timeout=180)
        assert await rows.wait_for(total, timeout=60) == total
        assert second.stop() == 0
        assert await rows.total() == total
        assert await rows.distinct_seq() == total
        assert await queue_depth(amqp_url, f"{prefix}.telemetry") == 0
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
        await rows.close()
