"""Commands end to end: REST → hub → MQTT (a private Mosquitto) → simulated ESP32 node → ack → stored verdict.

Each test gets its own broker, so retained statuses and queued commands never leak
between tests, and the hub runs with storage on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import hub_esp32_node.plugin
import orjson
import pytest
import voluptuous as vol

from hub import Hub, Manifest, hookimpl
from hub.core import cli
from hub.core.const import DATA_HTTP_URL, STATUS_OFFLINE, STATUS_ONLINE
from hub.testing import BrokerAddress, FleetStats, SimulatedNode, create_user_and_token, wait_until
from hub.testing.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.mosquitto

MAC = "24:6f:28:aa:00:01"
BUILTINS = ("hub.plugins.storage", "hub.plugins.mqtt", "hub.plugins.presence", "hub.plugins.http")


class RelayActions:
    """A third-party plugin adding an action the simulated firmware does not implement."""

    MANIFEST = Manifest(name="relays")

    @hookimpl
    def hub_setup(self, hub: Hub) -> None:
        hub.commands.actions.register(
            "RELAY_CONTROL",
            {vol.Required("relay"): vol.All(int, vol.Range(1, 5)), vol.Required("state"): bool},
            "Switch relay N on or off.",
            owner="relays",
        )


class Setup:
    """A broker, a hub factory on one data directory, an API client with a token, and simulated nodes."""

    def __init__(self, broker: PrivateMosquitto, hub_factory: Any, db_url: str, data_dir: Path) -> None:
        self.broker = broker
        self._hub_factory = hub_factory
        self._db_url = db_url
        self._data_dir = data_dir
        self.hub: Hub | None = None
        self.session: aiohttp.ClientSession | None = None
        self.token = ""
        self.nodes: list[SimulatedNode] = []

    async def start_hub(self) -> Hub:
        config = {
            "hub": {"data_dir": str(self._data_dir)},
            "storage": {"db_url": self._db_url},
            "mqtt": {"broker": self.broker.url, "client_id": f"hub-{uuid.uuid4().hex[:8]}", "session_expiry": 0},
            "http": {"port": 0},
        }
        plugins = [(hub_esp32_node.plugin, "esp32_node"), (RelayActions(), "relays")]
        self.hub = await self._hub_factory(config, builtins=BUILTINS, plugins=plugins, start=False)
        if not self.token:  # the first start makes the owner; a restarted hub keeps them
            self.token = (await create_user_and_token(self.hub)).token
        await self.hub.async_start()
        return self.hub

    async def node(self) -> SimulatedNode:
        node = SimulatedNode(MAC, BrokerAddress.from_url(self.broker.url), FleetStats())
        assert await node.power_on()
        self.nodes.append(node)
        assert await node.publish_telemetry()
        await until(lambda: (node := self.hub.registry.get(MAC)) is not None and node.status == STATUS_ONLINE)
        return node

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        assert self.hub is not None
        if self.session is None:
            self.session = aiohttp.ClientSession()
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.request(method, self.hub.data[DATA_HTTP_URL] + path, headers=headers, **kwargs) as r:
            return r.status, (await r.json()) if r.content_type == "application/json" else None

    async def command(self, body: dict[str, Any], expect: int = 201) -> dict[str, Any]:
        status, answer = await self.call("POST", f"/api/nodes/{MAC}/commands", json=body)
        assert status == expect, answer
        return answer

    async def verdict(self, command_id: str, status: str) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            code, body = await self.call("GET", f"/api/commands/{command_id}?wait=5")
            assert code == 200, body
            return body if body["status"] == status else None

        return await wait_until(check, timeout=20, message=f"command {command_id} {status}")

    async def close(self) -> None:
        """Nodes, then the hub (before its database and broker go away), then the client."""
        if self.hub is not None:
            await self.hub.async_stop()
        for node in self.nodes:
            await node.commands.close()
            await node.stop()
        if self.session is not None:
            await self.session.close()


async def until(condition: Any) -> Any:
    return await wait_until(condition, timeout=15, message="the simulated node and the hub agree")


@pytest.fixture(params=["sqlite", "postgresql"])
async def setup(request, tmp_path: Path, hub_factory: Any) -> AsyncIterator[Setup]:
    db_url = (
        f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("hub_postgres_url")
    )
    with PrivateMosquitto(tmp_path / "mosquitto") as broker:
        state = Setup(broker, hub_factory, db_url, tmp_path / "data")
        yield state
        await state.close()


async def test_reboot_goes_through_every_stage_and_is_stored(setup: Setup) -> None:
    await setup.start_hub()
    node = await setup.node()
    created = await setup.command({"action": "REBOOT"})
    assert created["status"] in ("queued", "sent", "delivered") and created["sender"] == "owner"
    done = await setup.verdict(created["id"], "succeeded")
    assert [step["status"] for step in done["history"]] == ["queued", "sent", "delivered", "acknowledged", "succeeded"]
    await until(lambda: node.reboots == 1 and node.connected)
    assert node.commands.executed == ["REBOOT"]
    status, listed = await setup.call("GET", f"/api/commands?node_id={MAC}")
    assert status == 200 and [c["id"] for c in listed["commands"]] == [created["id"]]
    assert listed["commands"][0]["status"] == "succeeded"


async def test_a_redelivered_command_is_not_executed_twice(setup: Setup) -> None:
    hub = await setup.start_hub()
    node = await setup.node()
    created = await setup.command({"action": "STATUS_REQUEST"})
    await setup.verdict(created["id"], "succeeded")
    # The broker hands the same message over again (a persistent session replaying it).
    replay = {"message_id": created["id"], "action": "STATUS_REQUEST", "params": {}, "timeout": 60}
    await hub.messages.publish(node.commands_topic, orjson.dumps(replay), qos=1, confirm=True)
    await until(lambda: node.commands.duplicates == 1)
    assert node.commands.executed == ["STATUS_REQUEST"]
    assert hub.commands.get(created["id"]).status == "succeeded"


async def test_a_node_side_error_fails_the_command_with_the_nodes_reason(setup: Setup) -> None:
    await setup.start_hub()
    await setup.node()
    created = await setup.command({"action": "RELAY_CONTROL", "params": {"relay": 2, "state": True}})
    failed = await setup.verdict(created["id"], "failed")
    assert failed["detail"] == "unknown action RELAY_CONTROL"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"action": "SELF_DESTRUCT"}, "unknown_action"),
        ({"action": "RELAY_CONTROL", "params": {"relay": 7, "state": True}}, "invalid_params"),
        ({"action": "REBOOT", "priority": 11}, "invalid_request"),
        ({"action": "REBOOT", "ttl": 0}, "invalid_request"),
        ({"action": "REBOOT", "offline_policy": "maybe"}, "invalid_request"),
    ],
)
async def test_bad_commands_are_refused_and_nothing_reaches_the_node(setup: Setup, body, code) -> None:
    await setup.start_hub()
    node = await setup.node()
    refused = await setup.command(body, expect=400)
    assert refused["error"]["code"] == code
    status, listed = await setup.call("GET", "/api/commands")
    assert status == 200 and listed["commands"] == []
    assert node.commands.executed == []


async def test_actions_say_which_params_they_take(setup: Setup) -> None:
    await setup.start_hub()
    status, body = await setup.call("GET", "/api/actions")
    assert status == 200
    actions = {action["name"]: action for action in body["actions"]}
    assert actions["REBOOT"]["params"] == []
    assert actions["RELAY_CONTROL"]["params"] == [
        {"name": "relay", "required": True},
        {"name": "state", "required": True},
    ]
    assert actions["RELAY_CONTROL"]["owner"] == "relays"
    assert {"name": "sha256", "required": False} in actions["FIRMWARE_UPDATE"]["params"]


async def test_offline_policies(setup: Setup) -> None:
    hub = await setup.start_hub()
    node = await setup.node()
    await node.stop()  # graceful: "offline" published
    await until(lambda: hub.registry.get(MAC).status == STATUS_OFFLINE)
    refused = await setup.command({"action": "REBOOT", "offline_policy": "refuse"}, expect=409)
    assert refused["error"]["code"] == "node_offline"
    queued = await setup.command({"action": "STATUS_REQUEST", "offline_policy": "queue", "ttl": 60})
    await asyncio.sleep(0.3)
    status, body = await setup.call("GET", f"/api/commands/{queued['id']}")
    assert status == 200 and body["status"] == "queued"
    assert await node.power_on()
    await until(lambda: hub.registry.get(MAC).status == STATUS_ONLINE)
    await setup.verdict(queued["id"], "succeeded")
    assert node.commands.executed == ["STATUS_REQUEST"]


async def test_a_command_whose_ttl_runs_out_while_queued_expires_unsent(setup: Setup) -> None:
    hub = await setup.start_hub()
    node = await setup.node()
    await node.stop()
    await until(lambda: hub.registry.get(MAC).status == STATUS_OFFLINE)
    queued = await setup.command({"action": "REBOOT", "ttl": 1})
    expired = await setup.verdict(queued["id"], "expired")
    assert [step["status"] for step in expired["history"]] == ["queued", "expired"]
    assert await node.power_on()
    await until(lambda: hub.registry.get(MAC).status == STATUS_ONLINE)
    await asyncio.sleep(0.3)
    assert node.commands.executed == []


async def test_a_queued_command_survives_a_hub_restart(setup: Setup) -> None:
    hub = await setup.start_hub()
    node = await setup.node()
    await node.stop()
    await until(lambda: hub.registry.get(MAC).status == STATUS_OFFLINE)
    queued = await setup.command({"action": "STATUS_REQUEST", "ttl": 120})
    await hub.async_stop()
    second = await setup.start_hub()
    assert second.commands.get(queued["id"]).status == "queued"
    assert await node.power_on()
    await setup.verdict(queued["id"], "succeeded")
    assert node.commands.executed == ["STATUS_REQUEST"]


async def test_cancel_a_queued_command(setup: Setup) -> None:
    hub = await setup.start_hub()
    node = await setup.node()
    await node.stop()
    await until(lambda: hub.registry.get(MAC).status == STATUS_OFFLINE)
    queued = await setup.command({"action": "REBOOT"})
    status, cancelled = await setup.call("POST", f"/api/commands/{queued['id']}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled" and cancelled["detail"] == "cancelled by owner"
    status, again = await setup.call("POST", f"/api/commands/{queued['id']}/cancel")
    assert status == 409 and again["error"]["code"] == "already_done"
    status, missing = await setup.call("GET", f"/api/commands/{'0' * 32}")
    assert status == 404


async def test_hub_command_cli_prints_each_stage_and_exits_by_the_verdict(setup: Setup, capsys) -> None:
    hub = await setup.start_hub()
    node = await setup.node()
    url = hub.data[DATA_HTTP_URL]
    argv = ["command", MAC, "STATUS_REQUEST", "--url", url, "--token", setup.token]
    assert await asyncio.to_thread(cli.main, argv) == 0
    out = capsys.readouterr().out
    assert [line.split()[-1] for line in out.splitlines()[:-1]] == [
        "queued",
        "sent",
        "delivered",
        "acknowledged",
        "succeeded",
    ]
    assert out.splitlines()[-1].endswith(" succeeded")
    argv = ["command", MAC, "RELAY_CONTROL", "relay=2", "state=true", "--url", url, "--token", setup.token]
    assert await asyncio.to_thread(cli.main, argv) == 1
    assert "failed: unknown action RELAY_CONTROL" in capsys.readouterr().out
    assert await asyncio.to_thread(cli.main, ["command", MAC, "REBOOT", "--url", url, "--token", "wrong"]) == 1
    assert node.commands.executed == ["STATUS_REQUEST", "RELAY_CONTROL"]
