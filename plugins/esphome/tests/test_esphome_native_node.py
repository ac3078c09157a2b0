"""A real ESPHome node over the native API: compiled for the host platform, run in a namespace of its own.

The node (``nodes/native_host.yaml``: an uptime sensor every second, a relay
switch, a counting button, a level number, a version text sensor) is built once and
cached, and runs as a real program (see native_node.py).  The hub connects with
aioesphomeapi; nothing of the node or the API is faked.  Without ESPHome or a
network namespace these tests skip, and fail under HUB_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import hub_esphome.plugin
import orjson
import pytest
import sqlalchemy as sa
from aioesphomeapi.zeroconf import ZeroconfManager
from hub_esphome.plugin import DATA_NATIVE
from native_node import NODE_MAC, NODE_NAME, HostNode, build, esphome_executable, require_network_namespace
from sqlalchemy.ext.asyncio import create_async_engine

from hub import DATA_HTTP_URL, REASON_LWT, STATUS_OFFLINE, STATUS_ONLINE, Hub
from hub.testing import create_user_and_token, wait_until

pytestmark = pytest.mark.esphome

BUILTINS = ("hub.plugins.storage", "hub.plugins.presence", "hub.plugins.http")
ENTITIES = {
    "sensor.uptime",
    "sensor.button_presses",
    "switch.relay",
    "binary_sensor.relay_on",
    "button.count",
    "number.level",
    "text_sensor.esphome_version",
}


@pytest.fixture(scope="module")
def program() -> Path:
    require_network_namespace()
    return build(esphome_executable())


@pytest.fixture
async def node(program: Path, tmp_path: Path) -> AsyncIterator[HostNode]:
    node = HostNode(program, tmp_path / "node")
    await node.start()
    yield node
    await node.close()


async def make_hub(hub_factory: Any, tmp_path: Path, native_api: dict[str, Any]) -> tuple[Hub, str]:
    config = {
        "storage": {"db_url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", "flush_interval": 0.05},
        "http": {"port": 0},
        "esphome": {"native_api": native_api},
    }
    hub = await hub_factory(config, builtins=BUILTINS, plugins=[(hub_esphome.plugin, "esphome")], start=False)
    token = (await create_user_and_token(hub)).token
    await hub.async_start()
    assert {"storage", "presence", "http", "esphome"} <= set(hub.plugins.info), hub.plugins.failed
    return hub, token


async def stored(db_url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            return list(await conn.execute(sa.text(sql), params))
    finally:
        await engine.dispose()


@pytest.fixture
def zeroconf_instances(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every zeroconf instance aioesphomeapi makes (it makes one to send or listen for mDNS): none, we assert."""
    made: list[object] = []
    create = ZeroconfManager._create_async_zeroconf

    def recording(self: ZeroconfManager) -> None:
        made.append(self)
        create(self)

    monkeypatch.setattr(ZeroconfManager, "_create_async_zeroconf", recording)
    return made


async def test_a_real_node_reaches_registry_and_storage_and_takes_commands(
    node: HostNode, hub_factory: Any, tmp_path: Path, zeroconf_instances: list[object]
) -> None:
    started = time.perf_counter()
    hub, token = await make_hub(hub_factory, tmp_path, {"nodes": [{"host": "127.0.0.1", "port": node.port}]})

    # Device info and the entity list, as the node reports them, keyed like MQTT discovery keys them.
    registered = await wait_until(
        lambda: (n := hub.registry.get(NODE_MAC)) and ENTITIES <= set(n.entities) and n, timeout=30
    )
    connected_in = time.perf_counter() - started
    connection = hub.data[DATA_NATIVE].connection(NODE_MAC)
    assert connection is not None and connection.connected
    print(
        f"\nhub start → {len(registered.entities)} entities in the registry: {connected_in * 1000:.0f} ms; "
        f"connect → entities registered: {connection.first_connect_seconds * 1000:.1f} ms "
        f"(of which after the handshake: {connection.last_setup_seconds * 1000:.1f} ms)"
    )
    assert registered.name == "Hub native test"
    assert registered.firmware_version == "1.0.0"  # the project's version
    assert registered.attributes["esphome_version"] == "2026.10.0"
    assert registered.attributes["esphome_name"] == NODE_NAME
    assert registered.attributes["board"] == "host"
    assert registered.attributes["native_api"] == f"127.0.0.1:{node.port}"
    uptime = registered.entities["sensor.uptime"]
    assert (uptime.unit, uptime.device_class, uptime.state_class) == ("s", "duration", "total_increasing")
    level = registered.entities["number.level"]
    assert (level.unit, level.attributes["min"], level.attributes["max"], level.attributes["step"]) == ("%", 0, 100, 1)
    version = registered.entities["text_sensor.esphome_version"]
    await wait_until(lambda: version.state, message="the current states, streamed right after the entity list")
    assert version.state.startswith("2026.10.0")
    await wait_until(lambda: registered.status == STATUS_ONLINE, message="the node online")

    # Changing states: the uptime sensor publishes every second.
    first = await wait_until(lambda: uptime.state)
    await wait_until(lambda: uptime.state is not None and uptime.state >= first + 2, message="uptime to advance")

    # A switch command through the REST API: queued → sent → delivered → succeeded when the node reports ON.
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        url = f"{hub.data[DATA_HTTP_URL]}/api/nodes/{NODE_MAC}/commands"
        async with session.post(url, json={"action": "SWITCH", "params": {"entity": "relay", "state": "ON"}}) as answer:
            assert answer.status == 201, await answer.text()
            command_id = (await answer.json())["id"]
        async with session.get(f"{hub.data[DATA_HTTP_URL]}/api/commands/{command_id}?wait=15") as answer:
            done = await answer.json()
    assert done["status"] == "succeeded", done
    assert [step["status"] for step in done["history"]] == ["queued", "sent", "delivered", "succeeded"]
    assert done["detail"] == "switch.relay is ON"
    assert registered.entities["switch.relay"].state is True
    await wait_until(lambda: registered.entities["binary_sensor.relay_on"].state is True)

    # A number and a button through hub.commands, confirmed by what the node reports.
    number = hub.commands.submit(NODE_MAC, "NUMBER_SET", {"entity": "number.level", "value": 42}, sender="test")
    assert (await hub.commands.wait_done(number.id, 15)).status == "succeeded", number.as_dict()
    assert level.state == 42.0
    press = hub.commands.submit(NODE_MAC, "BUTTON_PRESS", {"entity": "count"}, sender="test")
    assert (await hub.commands.wait_done(press.id, 15)).status == "succeeded", press.as_dict()
    await wait_until(lambda: registered.entities["sensor.button_presses"].state == 1.0, message="the press counted")
    out_of_range = hub.commands.submit(NODE_MAC, "NUMBER_SET", {"entity": "level", "value": 150}, sender="test")
    refused = await hub.commands.wait_done(out_of_range.id, 15)
    assert (refused.status, refused.detail) == ("failed", "number.level takes 0–100, not 150")

    # Storage: the node, its entities, and the readings (the uptime's rows among them).
    await hub.durability.wait_committed()
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    keys = await stored(
        db_url, "SELECT e.key FROM entities e JOIN nodes n ON n.id = e.node_ref WHERE n.node_id = :n", n=NODE_MAC
    )
    assert {row[0] for row in keys} == ENTITIES
    rows = await stored(
        db_url, "SELECT t.states FROM telemetry t JOIN nodes n ON n.id = t.node_ref WHERE n.node_id = :n", n=NODE_MAC
    )
    readings = [orjson.loads(row[0]) if isinstance(row[0], str) else row[0] for row in rows]
    # A node that has just started may report the uptime as unknown (None) before its first update: stored too.
    uptimes = [states["sensor.uptime"] for states in readings if states.get("sensor.uptime") is not None]
    assert len(uptimes) >= 3 and uptimes == sorted(uptimes)
    assert any(states.get("switch.relay") is True for states in readings)
    commands = await stored(db_url, "SELECT status FROM commands WHERE id = :id", id=command_id)
    assert [row[0] for row in commands] == ["succeeded"]
    assert zeroconf_instances == []  # no mDNS: neither to resolve the host nor to wait for the node


async def test_a_killed_node_goes_offline_at_once_and_comes_back_with_its_queued_command(
    node: HostNode, hub_factory: Any, tmp_path: Path, zeroconf_instances: list[object]
) -> None:
    """Announced on esphome/discover (auto_connect); frozen (no TCP reset: found by the heartbeat), thawed; killed
    with SIGKILL, started again: reconnected by itself each time."""
    hub, _token = await make_hub(hub_factory, tmp_path, {"auto_connect": True, "keepalive": 1})
    announcement = {"ip": "127.0.0.1", "name": NODE_NAME, "mac": NODE_MAC.replace(":", ""), "port": node.port}
    hub.messages.dispatch(f"esphome/discover/{NODE_NAME}", orjson.dumps(announcement), True)
    registered = await wait_until(
        lambda: (n := hub.registry.get(NODE_MAC)) and n.status == STATUS_ONLINE and n, timeout=30
    )

    node.freeze()
    frozen = time.perf_counter()
    await wait_until(lambda: registered.status == STATUS_OFFLINE, message="the frozen node offline")
    print(f"\nSIGSTOP → offline: {(time.perf_counter() - frozen) * 1000:.0f} ms ({registered.status_reason})")
    node.freeze(False)
    await wait_until(lambda: registered.status == STATUS_ONLINE, timeout=30, message="the thawed node back online")

    node.kill()
    killed = time.perf_counter()
    await wait_until(lambda: registered.status == STATUS_OFFLINE, message="the killed node offline")
    print(f"SIGKILL → offline: {(time.perf_counter() - killed) * 1000:.0f} ms")
    assert registered.status_reason == REASON_LWT

    # A command to the offline node waits for it (offline policy "queue").
    command = hub.commands.submit(NODE_MAC, "SWITCH", {"entity": "switch.relay", "state": "ON"}, sender="test")
    assert command.status == "queued"

    await node.start()  # a new process: the relay's port is the same, so the reconnect logic finds it again
    await wait_until(lambda: registered.status == STATUS_ONLINE, timeout=30, message="the node back online")
    done = await hub.commands.wait_done(command.id, 15)
    assert done.status == "succeeded", done.as_dict()
    assert registered.entities["switch.relay"].state is True
    assert hub.data[DATA_NATIVE].connection(NODE_MAC).connects == 3
    assert zeroconf_instances == []  # reconnecting with backoff, never waiting on mDNS
