"""The event fan-out between a `--role api` and a `--role worker` hub on the real RabbitMQ and PostgreSQL.

A simulated node speaks MQTT to RabbitMQ's MQTT plugin; only the worker consumes its messages. The API
instance's WebSocket client must still see the node appear, its readings and its status, and a command sent
on the API instance must reach succeeded though the worker consumed the node's answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import aiohttp
import hub_esp32_node.plugin
import orjson
import pytest
from rabbit_helpers import rabbit_config, random_macs
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub import DATA_HTTP_URL, ROLE_API, ROLE_WORKER, STATUS_ONLINE
from hub.core.commands import SUCCEEDED
from hub.testing import BrokerAddress, FleetStats, SimulatedNode, create_user_and_token, wait_until

pytestmark = pytest.mark.rabbitmq

BUILTINS = ("hub.plugins.storage", "hub.plugins.presence", "hub.plugins.rabbitmq")
PLUGINS = [(hub_esp32_node.plugin, "esp32_node")]


class Events:
    """Every event a WebSocket client subscribed to ``*`` receives, gathered in the background."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seen: list[dict[str, Any]] = []
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = message.json()
            if data.get("type") == "event":
                self.seen.append(data["event"])

    def of(self, event_type: str, **match: Any) -> list[dict[str, Any]]:
        return [
            e
            for e in self.seen
            if e["event_type"] == event_type and all(e["data"].get(k) == v for k, v in match.items())
        ]

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_an_api_instance_is_live_for_what_a_worker_hears_and_its_commands_complete(
    amqp_url, rabbit_mqtt_url, prefix, hub_postgres_url, hub_factory
):
    [mac] = random_macs(1)
    node_id = mac.lower()
    rabbit = rabbit_config(amqp_url, prefix, [mac], events={"interval": 0.05})
    storage = {"db_url": hub_postgres_url, "flush_interval": 0.05}
    api = await hub_factory(
        {"storage": storage, "rabbitmq": rabbit, "http": {"port": 0}},
        builtins=(*BUILTINS, "hub.plugins.http"),
        plugins=PLUGINS,
        role=ROLE_API,
    )
    worker = await hub_factory(
        {"storage": storage, "rabbitmq": rabbit}, builtins=BUILTINS, plugins=PLUGINS, role=ROLE_WORKER
    )
    user = await create_user_and_token(api)
    node = SimulatedNode(mac, BrokerAddress.from_url(rabbit_mqtt_url), FleetStats())
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(api.data[DATA_HTTP_URL] + "/api/websocket")
        assert (await ws.receive_json())["type"] == "auth_required"
        await ws.send_json({"type": "auth", "access_token": user.token})
        assert (await ws.receive_json())["type"] == "auth_ok"
        await ws.send_json({"id": 1, "type": "subscribe_events"})
        assert (await ws.receive_json())["success"] is True
        events = Events(ws)
        assert await node.power_on()
        try:
            assert await node.publish_telemetry()
            # The worker heard the node; the API instance's client sees it appear, its readings and its status.
            await wait_until(lambda: events.of("node_status_changed", node_id=node_id, new=STATUS_ONLINE))
            await wait_until(lambda: events.of("state_changed", node_id=node_id))
            assert events.of("node_registered", node_id=node_id)
            assert all(e["data"]["origin"] for e in events.of("state_changed", node_id=node_id))
            known = api.registry.get(node_id)
            assert known is not None and known.status == STATUS_ONLINE and known.entities
            heard = worker.registry.get(node_id)
            assert {k: e.state for k, e in known.entities.items()} == {k: e.state for k, e in heard.entities.items()}

            # A command accepted by the API instance: the worker consumes the answer, the API instance completes it.
            command = api.commands.submit(node_id, "STATUS_REQUEST", sender="test")
            done = await api.commands.wait_done(command.id, timeout=20)
            assert done.status == SUCCEEDED, done.history
            assert [step[0] for step in done.history] == ["queued", "sent", "delivered", "acknowledged", "succeeded"]
            assert worker.commands.get(command.id) is None  # the worker never held it
            await wait_until(
                lambda: any(
                    e["data"]["command"]["status"] == SUCCEEDED
                    for e in events.of("command_updated")
                    if e["data"]["command"]["id"] == command.id
                )
            )
            # PostgreSQL is the truth: the API instance wrote the command, the worker the node and its status,
            # once each (the API instance applied the worker's events without writing them again).
            await worker.async_stop()  # before the node stops: its goodbye would mark it offline
            await api.async_stop()
            engine = create_async_engine(hub_postgres_url)
            try:
                async with engine.connect() as conn:
                    stored = await conn.execute(text("SELECT status FROM commands WHERE id = :id"), {"id": command.id})
                    assert stored.scalar_one() == SUCCEEDED
                    row = await conn.execute(text("SELECT status FROM nodes WHERE node_id = :n"), {"n": node_id})
                    assert row.scalar_one() == STATUS_ONLINE
                    history = (
                        "SELECT count(*) FROM status_history h JOIN nodes n ON n.id = h.node_ref WHERE n.node_id = :n"
                    )
                    changes = (await conn.execute(text(history), {"n": node_id})).scalar_one()
                    assert changes == 1, changes
            finally:
                await engine.dispose()
        finally:
            await events.close()
            await ws.close()
            await node.commands.close()
            await node.stop()


async def test_applied_events_are_not_stored_again_not_echoed_and_an_older_status_never_wins(
    amqp_url, prefix, hub_postgres_url, hub_factory
):
    """A foreign process's batch: applied to the registry in order, a stale status skipped, malformed events
    counted; nothing of it written to PostgreSQL by this process (the sender did) nor published back."""
    [mac] = random_macs(1)
    node_id = mac.lower()
    api = await hub_factory(
        {
            "storage": {"db_url": hub_postgres_url, "flush_interval": 0.05},
            "rabbitmq": rabbit_config(amqp_url, prefix, [mac], events={"interval": 0.05}),
        },
        builtins=BUILTINS,
        plugins=PLUGINS,
        role=ROLE_API,
    )
    node = {
        "node_id": node_id, "name": "remote", "status": "unknown", "status_reason": None, "status_since": None,
        "first_seen": 100.0, "last_seen": 100.0, "firmware_version": None, "description": "", "area": None,
        "tags": [], "attributes": {},
        "entities": [{"key": "temperature", "platform": "sensor", "name": "Temperature", "unit": "°C",
                      "device_class": None, "state_class": None, "attributes": {}, "state": 20.0,
                      "last_changed": 100.0, "last_reported": 100.0}],
    }  # fmt: skip
    status = {"node_id": node_id, "old": "unknown", "reason": "message"}
    batch = {
        "events": [
            ["node_registered", {"node_id": node_id, "node": node}],
            ["node_status_changed", {**status, "new": STATUS_ONLINE, "ts": 200.0}],
            ["node_status_changed", {**status, "new": "offline", "ts": 150.0}],  # crossed on the wire: stale
            ["no_such_event", {}],
            ["node_status_changed", {"node_id": node_id}],  # malformed
        ],
        "states": [[node_id, 210.0, {"temperature": [21.5, 210.0, 210.0]}]],
    }
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        exchange = await channel.get_exchange(f"{prefix}.events", ensure=False)
        watch = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await watch.bind(exchange)
        await exchange.publish(aio_pika.Message(orjson.dumps(batch), headers={"hub-instance": "elsewhere"}), "")
        await wait_until(lambda: (n := api.registry.get(node_id)) is not None and n.last_seen == 210.0)
        known = api.registry.get(node_id)
        assert (known.status, known.status_since) == (STATUS_ONLINE, 200.0)
        assert known.entities["temperature"].state == 21.5
        metrics = api.metrics.registry
        assert metrics.get_sample_value("hub_rabbitmq_events_rejected_total") == 2
        assert metrics.get_sample_value("hub_rabbitmq_events_applied_total") == 4  # the stale one skipped, not rejected
        await api.async_stop()  # storage flushed, the fan-out published what it had gathered
        engine = create_async_engine(hub_postgres_url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(text("SELECT count(*) FROM nodes WHERE node_id = :n"), {"n": node_id})
                assert rows.scalar_one() == 0  # the sender wrote it, not this process
        finally:
            await engine.dispose()
        assert orjson.loads((await watch.get(timeout=5)).body) == batch  # the test's own batch
        assert await watch.get(fail=False) is None  # nothing echoed back
    finally:
        await connection.close()
