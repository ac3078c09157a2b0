"""POST /api/commands end to end: a target (tag, area, list, not_version) → one command per node → simulated nodes.

Three simulated ESP32 nodes on a private Mosquitto, and a fourth known only from
config.yaml's ``nodes:`` (it never connected, so no integration can reach it:
it is listed as refused, the others still get their command).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import hub_esp32_node.plugin
import pytest

from hub import DATA_HTTP_URL, STATUS_OFFLINE, STATUS_ONLINE, Hub
from hub.testing import (
    SIMULATED_FIRMWARE_VERSION,
    BrokerAddress,
    FleetStats,
    SimulatedNode,
    create_user_and_token,
    wait_until,
)
from hub.testing.mosquitto import PrivateMosquitto

pytestmark = pytest.mark.mosquitto

A, B, C, D = (f"24:6f:28:bb:00:0{i}" for i in range(1, 5))
BUILTINS = ("hub.plugins.storage", "hub.plugins.mqtt", "hub.plugins.presence", "hub.plugins.http")
NODES = {
    A: {"name": "Pump", "area": "Greenhouse 2", "tags": ["beta"]},
    B: {"name": "Valve", "area": "greenhouse 2"},
    C: {"name": "Fan", "area": "Barn", "tags": ["beta"]},
    D: {"name": "Spare", "area": "Greenhouse 2", "tags": ["beta"]},  # never connects
}


class Fleet:
    """The hub, its API with a token, and the simulated nodes A, B, C."""

    def __init__(self, hub: Hub, token: str, broker: PrivateMosquitto) -> None:
        self.hub = hub
        self.broker = broker
        self.session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
        self.sims: dict[str, SimulatedNode] = {}

    async def connect(self, mac: str, firmware: str = SIMULATED_FIRMWARE_VERSION) -> None:
        sim = SimulatedNode(mac, BrokerAddress.from_url(self.broker.url), FleetStats())
        sim.firmware_version = firmware
        self.sims[mac] = sim
        assert await sim.power_on()
        assert await sim.publish_telemetry()
        await wait_until(
            lambda: (node := self.hub.registry.get(mac)).status == STATUS_ONLINE and node.firmware_version == firmware,
            timeout=15,
            message=f"{mac} online on {firmware}",
        )

    async def send(self, body: dict[str, Any], expect: int = 200) -> dict[str, Any]:
        async with self.session.post(self.hub.data[DATA_HTTP_URL] + "/api/commands", json=body) as response:
            answer = await response.json()
            assert response.status == expect, answer
            return answer

    async def succeeded(self, answer: dict[str, Any]) -> list[str]:
        """Wait for every command of a bulk answer to succeed; returns their nodes."""
        for command in answer["commands"]:
            done = await self.hub.commands.wait_done(command["id"], 20)
            assert done.status == "succeeded", done.as_dict()
        return [command["node_id"] for command in answer["commands"]]

    async def close(self) -> None:
        await self.hub.async_stop()
        for sim in self.sims.values():
            await sim.commands.close()
            await sim.stop()
        await self.session.close()


@pytest.fixture
async def fleet(tmp_path: Path, hub_factory: Any) -> AsyncIterator[Fleet]:
    with PrivateMosquitto(tmp_path / "mosquitto") as broker:
        config = {
            "storage": {"db_url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"},
            "mqtt": {"broker": broker.url, "client_id": f"hub-{uuid.uuid4().hex[:8]}", "session_expiry": 0},
            "http": {"port": 0},
            "nodes": NODES,
        }
        hub = await hub_factory(config, builtins=BUILTINS, plugins=[(hub_esp32_node.plugin, "esp32_node")], start=False)
        token = (await create_user_and_token(hub)).token
        await hub.async_start()
        state = Fleet(hub, token, broker)
        try:
            await state.connect(A)
            await state.connect(B, firmware="1.5.0")
            await state.connect(C)
            yield state
        finally:
            await state.close()


async def test_a_tag_reaches_its_nodes_and_lists_the_one_that_cannot_take_it(fleet: Fleet) -> None:
    answer = await fleet.send({"target": {"tags": ["BETA"]}, "action": "STATUS_REQUEST"})
    assert answer["refused"] == [{"node_id": D, "code": "not_commandable", "message": answer["refused"][0]["message"]}]
    assert await fleet.succeeded(answer) == [A, C]
    assert {command["sender"] for command in answer["commands"]} == {"owner"}
    assert [fleet.sims[mac].commands.executed for mac in (A, B, C)] == [["STATUS_REQUEST"], [], ["STATUS_REQUEST"]]


async def test_area_and_not_version_intersect_and_a_list_targets_exactly(fleet: Fleet) -> None:
    answer = await fleet.send(
        {"target": {"area": "greenhouse 2", "not_version": "1.5.0"}, "action": "STATUS_REQUEST", "priority": 9}
    )
    assert await fleet.succeeded(answer) == [A] and [r["node_id"] for r in answer["refused"]] == [D]
    answer = await fleet.send({"target": {"nodes": ["24-6F-28-BB-00-03", B]}, "action": "REBOOT"})
    assert await fleet.succeeded(answer) == [B, C] and answer["refused"] == []
    await wait_until(lambda: fleet.sims[B].reboots == 1 and fleet.sims[C].reboots == 1, timeout=15)
    assert fleet.sims[A].commands.executed == ["STATUS_REQUEST"]


async def test_offline_nodes_are_refused_under_the_refuse_policy(fleet: Fleet) -> None:
    await fleet.sims[C].stop()
    await wait_until(lambda: fleet.hub.registry.get(C).status == STATUS_OFFLINE, timeout=15, message="C offline")
    body = {"target": {"tags": ["beta"]}, "action": "STATUS_REQUEST", "offline_policy": "refuse"}
    answer = await fleet.send(body)
    assert await fleet.succeeded(answer) == [A]
    assert [(r["node_id"], r["code"]) for r in answer["refused"]] == [(C, "node_offline"), (D, "not_commandable")]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"target": {}, "action": "REBOOT"}, 400, "invalid_target"),
        ({"target": {"rack": "3"}, "action": "REBOOT"}, 400, "invalid_request"),
        ({"action": "REBOOT"}, 400, "invalid_request"),
        ({"target": {"tags": ["a,b"]}, "action": "REBOOT"}, 400, "invalid_request"),
        ({"target": {"nodes": [A, "ff:ff:ff:ff:ff:ff"]}, "action": "REBOOT"}, 404, "node_not_found"),
        ({"target": {"area": "nowhere"}, "action": "REBOOT"}, 409, "empty_target"),
        ({"target": {"tags": ["beta"]}, "action": "SELF_DESTRUCT"}, 400, "unknown_action"),
        ({"target": {"tags": ["beta"]}, "action": "FIRMWARE_UPDATE", "params": {"url": "x"}}, 400, "invalid_params"),
    ],
)
async def test_bad_requests_queue_nothing(fleet: Fleet, body: dict[str, Any], status: int, code: str) -> None:
    answer = await fleet.send(body, expect=status)
    assert answer["error"]["code"] == code
    assert fleet.hub.commands.pending() == []
