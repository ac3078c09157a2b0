"""The event fan-out between a `--role api` and a `--role worker` hub on the real RabbitMQ and PostgreSQL.

A simulated node speaks MQTT to RabbitMQ's MQTT plugin; only the worker consumes its messages. The API
instance's WebSocket client must still see the node appear, its readings and its status, and a command sent
on the API instance must reach succeeded though the worker consumed the node's answer.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import hub_esp32_node.plugin
import pytest
from hub_esp32_node.simulator import BrokerAddress, FleetStats, SimulatedNode
from rabbit_helpers import rabbit_config, random_macs
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from hub import DATA_HTTP_URL, ROLE_API, ROLE_WORKER, STATUS_ONLINE
from hub.core.commands import SUCCEEDED
from hub.testing import create_user_and_token, wait_until

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
            # PostgreSQL is the truth: the API instance wrote the command, the worker the node's status, once each.
            engine = create_async_engine(hub_postgres_url)
            try:
                await wait_until(lambda: _status_of(engine, command.id), timeout=10, message="the command stored")
                async with engine.connect() as conn:
                    node_status = (
                        await conn.execute(text("SELECT status FROM nodes WHERE node_id = :n"), {"n": node_id})
                    ).scalar_one()
                    assert node_status == STATUS_ONLINE
                    changes = (
                        await conn.execute(
                            text(
                                "SELECT count(*) FROM status_history h JOIN nodes n ON n.id = h.node_ref "
                                "WHERE n.node_id = :n"
                            ),
                            {"n": node_id},
                        )
                    ).scalar_one()
                    assert changes == 1  # written by the worker only, not again by the API instance
            finally:
                await engine.dispose()
        finally:
            await events.close()
            await ws.close()
            await node.commands.close()
            await node.stop()


async def _status_of(engine: Any, command_id: str) -> bool:
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT status FROM commands WHERE id = :id"), {"id": command_id})).first()
    return row is not None and row[0] == SUCCEEDED
