"""Fixtures for the RabbitMQ tests: the real broker (skip or fail when absent), a per-test prefix cleaned up after."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from rabbit_helpers import rabbitmq_mqtt_url, rabbitmq_url

from hub.plugins.rabbitmq.topology import delete
from hub.testing import require_service


@pytest.fixture
def amqp_url() -> str:
    """The machine's RabbitMQ (``HUB_TEST_RABBITMQ_URL``, default guest on 127.0.0.1:5672)."""
    return require_service(rabbitmq_url(), "RabbitMQ")


@pytest.fixture
def rabbit_mqtt_url(amqp_url: str) -> str:
    """RabbitMQ's MQTT plugin (``HUB_TEST_RABBITMQ_MQTT_URL``, default 127.0.0.1:1884, enabled by .ci/run)."""
    return require_service(rabbitmq_mqtt_url(), "RabbitMQ's MQTT plugin (rabbitmq-plugins enable rabbitmq_mqtt)")


@pytest.fixture
async def prefix(amqp_url: str) -> AsyncIterator[str]:
    """A queue/exchange prefix of this test's own; everything under it is deleted afterwards."""
    name = f"hubtest-{uuid.uuid4().hex[:10]}"
    yield name
    connection = await aio_pika.connect(amqp_url)
    try:
        await delete(connection, {"prefix": name})
    finally:
        await connection.close()
