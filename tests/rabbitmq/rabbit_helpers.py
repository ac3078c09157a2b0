"""Helpers for the RabbitMQ tests: per-test names and bindings, publishers, row counts.

Every test uses its own ``prefix`` (queues ``<prefix>.telemetry`` …) and binds only the
MACs it made up, so parallel runs and other tests on the shared RabbitMQ never see
each other's messages; the queues and exchanges are deleted when the test ends.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import aio_pika
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

RABBITMQ_URL_ENV = "HUB_TEST_RABBITMQ_URL"
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"
RABBITMQ_MQTT_ENV = "HUB_TEST_RABBITMQ_MQTT_URL"
DEFAULT_RABBITMQ_MQTT_URL = "mqtt://127.0.0.1:1884"
"""RabbitMQ's MQTT plugin (.ci/run enables it on 1884: Mosquitto has 1883)."""


def rabbitmq_url() -> str:
    return os.environ.get(RABBITMQ_URL_ENV, DEFAULT_RABBITMQ_URL)


def rabbitmq_mqtt_url() -> str:
    return os.environ.get(RABBITMQ_MQTT_ENV, DEFAULT_RABBITMQ_MQTT_URL)


def random_macs(count: int) -> list[str]:
    """MACs no other test uses (the topic spelling, upper case with colons)."""
    stem = uuid.uuid4().hex[:6].upper()
    return [f"{stem[0:2]}:{stem[2:4]}:{stem[4:6]}:00:{i // 256:02X}:{i % 256:02X}" for i in range(count)]


def rabbit_config(url: str, prefix: str, macs: list[str], **options: Any) -> dict[str, Any]:
    """A ``rabbitmq:`` section whose queues are bound to these MACs' topics only."""
    queues = {
        kind: {"bindings": [f"devices/{mac}/{leaf}" for mac in macs]}
        for kind, leaf in (("telemetry", "data"), ("status", "status"), ("acks", "ack"))
    }
    return {"url": url, "prefix": prefix, "queues": queues, **options}


def telemetry(seq: int, **extra: Any) -> bytes:
    return orjson.dumps({"seq": seq, "counter": seq, "temperature": 20 + seq % 100 / 10, **extra})


async def publish_amqp(url: str, messages: list[tuple[str, bytes]], exchange: str = "amq.topic") -> None:
    """Publish ``(topic, payload)`` as RabbitMQ's MQTT plugin would (routing key with dots), each confirmed."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange, ensure=False)
        for start in range(0, len(messages), 200):
            await asyncio.gather(
                *(
                    target.publish(
                        aio_pika.Message(payload, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        topic.replace("/", "."),
                    )
                    for topic, payload in messages[start : start + 200]
                )
            )
    finally:
        await connection.close()


async def queue_depth(url: str, name: str) -> int:
    """Ready messages in queue ``name`` (a passive declare)."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0
    finally:
        await connection.close()


class Rows:
    """Counts of the telemetry table of one database (total, and distinct node+seq)."""

    def __init__(self, db_url: str) -> None:
        self._engine = create_async_engine(db_url)

    async def total(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM telemetry"))).scalar_one())

    async def distinct_seq(self) -> int:
        async with self._engine.connect() as conn:
            query = "SELECT count(*) FROM (SELECT DISTINCT node_ref, states->>'counter' FROM telemetry) AS d"
            return int((await conn.execute(text(query))).scalar_one())

    async def wait_for(self, count: int, timeout: float = 60.0) -> int:
        """Wait (bounded) until the table holds at least ``count`` rows; returns the total."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        total = await self.total()
        while total < count and loop.time() < deadline:
            await asyncio.sleep(0.05)
            total = await self.total()
        return total

    async def close(self) -> None:
        await self._engine.dispose()


RABBITMQCTL_TIMEOUT = 60.0
"""Seconds one rabbitmqctl call may take (it starts an Erlang VM: a few seconds on a busy machine)."""


async def _rabbitmqctl(*arguments: str) -> str:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", *arguments, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        async with asyncio.timeout(RABBITMQCTL_TIMEOUT):
            out, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"rabbitmqctl {' '.join(arguments)} took over {RABBITMQCTL_TIMEOUT} s") from None
    if process.returncode != 0:
        raise AssertionError(f"rabbitmqctl {' '.join(arguments)} failed: {out.decode(errors='replace')[-500:]}")
    return out.decode(errors="replace")


def rabbitmqctl_usable() -> bool:
    """True when this user can run ``rabbitmqctl`` against the machine's RabbitMQ (root, or its Erlang cookie)."""
    import shutil
    import subprocess

    if shutil.which("rabbitmqctl") is None:
        return False
    try:
        return subprocess.run(["rabbitmqctl", "-q", "status"], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


async def close_connections_named(name: str) -> int:
    """Have RabbitMQ close the connections whose client-given ``connection_name`` contains ``name``, as an operator's
    ``rabbitmqctl close_connection`` (or a broker going down) does; returns how many it closed."""
    listing = await _rabbitmqctl("list_connections", "--no-table-headers", "pid", "client_properties")
    pids = [line.split("\t", 1)[0] for line in listing.splitlines() if f'{{"connection_name","{name}' in line]
    for pid in pids:
        await _rabbitmqctl("close_connection", pid, "closed by a hub test")
    return len(pids)
