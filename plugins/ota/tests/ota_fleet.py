"""A hub with every plugin a rollout needs, a private Mosquitto and a fleet of simulated ESP32 nodes.

The hub runs storage (SQLite or PostgreSQL), mqtt, presence, http, esp32_node and ota; the nodes speak the JSON
contract over the private broker and download their firmware from the hub's HTTP server, as real ones would.
The hub can be stopped and started again on the same data directory, database, broker and HTTP port.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import hub_ota.plugin
import pytest
from ota_images import build_image
from ota_testing import OtaClient

from hub import Hub
from hub.testing import (
    SIMULATED_FIRMWARE_VERSION,
    Fleet,
    OtaBehaviour,
    PrivateMosquitto,
    SimulatedNode,
    create_user_and_token,
    wait_until,
)

BUILTINS = ("hub.plugins.storage", "hub.plugins.mqtt", "hub.plugins.presence", "hub.plugins.http")
OLD = SIMULATED_FIRMWARE_VERSION
NEW = "2.0.0"


class RolloutSetup:
    """See the module docstring; ``await setup.start_hub()``, ``await setup.start_fleet(n, …)``."""

    def __init__(
        self,
        broker: PrivateMosquitto,
        hub_factory: Any,
        db_url: str,
        data_dir: Path,
        port: int,
        ota: dict[str, Any] | None = None,
    ) -> None:
        self.broker = broker
        self._ota = ota or {}
        self._hub_factory = hub_factory
        self._db_url = db_url
        self._data_dir = data_dir
        self._port = port
        self.hub: Hub | None = None
        self.client: OtaClient | None = None
        self.fleet: Fleet | None = None
        self._fleet_task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._token = ""

    async def start_hub(self) -> OtaClient:
        config = {
            "hub": {"data_dir": str(self._data_dir)},
            "storage": {"db_url": self._db_url},
            "mqtt": {"broker": self.broker.url, "client_id": f"hub-{uuid.uuid4().hex[:8]}", "session_expiry": 0},
            "http": {"port": self._port},
            "presence": {"initial_timeout": 30},
            "ota": self._ota,
        }
        with pytest.MonkeyPatch.context() as env:  # esp32_node as installed, by its entry point: never imported here
            env.setenv("HUB_LOAD_PLUGINS", "esp32_node")
            self.hub = await self._hub_factory(
                config, builtins=BUILTINS, plugins=[(hub_ota.plugin, "ota")], entry_points=True, start=False
            )
        if not self._token:  # the first start makes the owner; a restarted hub keeps them
            self._token = (await create_user_and_token(self.hub)).token
        await self.hub.async_start()
        assert "ota" in self.hub.plugins.info, self.hub.plugins.failed
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self.client = OtaClient(self.hub, self._session, self._token)
        return self.client

    async def start_fleet(self, count: int, *, behaviour: OtaBehaviour | None = None, interval: float = 2.0) -> Fleet:
        """``count`` nodes running on OLD, each registered with the hub and reporting its version."""
        assert self.hub is not None
        self.fleet = Fleet(self.broker.url, count, interval=interval, seed=1, ota_behaviour=behaviour)
        self._fleet_task = asyncio.create_task(self.fleet.run())
        hub = self.hub
        await wait_until(
            lambda: all(
                (n := hub.registry.get(node.mac.lower())) and n.firmware_version == OLD for node in self.fleet.nodes
            ),
            timeout=30,
            message=f"{count} simulated nodes registered on {OLD}",
        )
        return self.fleet

    def node(self, mac: str) -> SimulatedNode:
        assert self.fleet is not None
        return next(node for node in self.fleet.nodes if node.mac.lower() == mac)

    async def upload(self, version: str = NEW) -> dict[str, Any]:
        assert self.client is not None
        status, row = await self.client.upload(build_image(version, payload=32 * 1024))
        assert status == 201, row
        return row

    async def create(self, **body: Any) -> dict[str, Any]:
        assert self.client is not None
        status, rollout = await self.client.call("POST", "/api/ota/rollouts", json=body)
        assert status == 201, rollout
        return rollout

    async def rollout(self, rollout_id: str) -> dict[str, Any]:
        assert self.client is not None
        status, rollout = await self.client.call("GET", f"/api/ota/rollouts/{rollout_id}")
        assert status == 200, rollout
        return rollout

    async def wait_for(self, rollout_id: str, condition: Any, message: str, timeout: float = 45) -> dict[str, Any]:
        last: dict[str, Any] = {}

        async def check() -> dict[str, Any] | None:
            rollout = await self.rollout(rollout_id)
            last.update(rollout)
            return rollout if condition(rollout) else None

        try:
            return await wait_until(check, timeout=timeout, interval=0.1, message=message)
        except AssertionError as err:  # say where it stood
            unfinished = [
                (n["node_id"], n["status"], n["detail"]) for n in last.get("nodes", ()) if n["status"] != "succeeded"
            ]
            raise AssertionError(
                f"{err}; status {last.get('status')}, {last.get('counts')}, {unfinished[:5]}"
            ) from None

    async def close(self) -> None:
        """The hub first (before its database and broker go away), then the fleet, then the client."""
        if self.hub is not None:
            await self.hub.async_stop()
        if self.fleet is not None and self._fleet_task is not None:
            self.fleet.stop()
            await asyncio.wait_for(self._fleet_task, 30)
        if self._session is not None:
            await self._session.close()
