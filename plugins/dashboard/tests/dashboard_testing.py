"""Helpers for the dashboard's tests: a real hub serving the dashboard, simulated nodes, a signed-in browser page.

A module with a unique name (unlike conftest.py) so the test modules can import it.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import paho.mqtt.client as paho

from hub import Hub
from hub.testing import TEST_PASSWORD, BrokerAddress, FleetStats, SimulatedNode, UserToken, unavailable, wait_until

OWNER = "owner"
OWNER_PASSWORD = TEST_PASSWORD
TIMEOUT = 10_000
"""Milliseconds a browser expectation may take (live updates arrive within a second here)."""


def require_playwright() -> None:
    """For browser test modules, before they import Playwright."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        unavailable("playwright is not installed (pip install -e 'plugins/dashboard[test]')")


def random_mac() -> str:
    """A fresh, locally administered MAC, so tests on the shared broker never see each other's nodes."""
    return "02:" + ":".join(f"{random.randrange(256):02X}" for _ in range(5))


def node_id(mac: str) -> str:
    """The hub's id for a MAC (canonical lower case with colons)."""
    return mac.lower()


@dataclass
class Dashboard:
    """A running hub with the dashboard, its URL, a client session, and the simulated nodes of one test.

    ``owner`` is the owner account and its long-lived API token (None for a hub still waiting for onboarding).
    """

    hub: Hub
    url: str
    hub_mqtt_url: str
    session: aiohttp.ClientSession
    owner: UserToken | None = None
    nodes: list[SimulatedNode] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    macs: set[str] = field(default_factory=set)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    # --- simulated nodes -------------------------------------------------------------------
    async def start_node(self, interval: float = 0.4) -> SimulatedNode:
        """A simulated ESP32 (own MQTT connection, retained birth, Last Will) reporting every ``interval`` s."""
        mac = random_mac()
        self.macs.add(mac)
        node = SimulatedNode(mac, BrokerAddress.from_url(self.hub_mqtt_url), FleetStats(), interval=interval, seed=1)
        self.nodes.append(node)
        self.tasks.append(asyncio.create_task(node.run(self.stop)))
        await wait_until(lambda: self.hub.registry.get(node_id(mac)), message=f"node {mac} registered")
        return node

    async def publish(self, mac: str, leaf: str, payloads: list[bytes | str], *, retain: bool = False) -> None:
        """Publish raw messages to ``devices/{mac}/{leaf}`` (QoS 1, each acknowledged by the broker)."""
        self.macs.add(mac)
        await asyncio.to_thread(_publish_blocking, self.hub_mqtt_url, f"devices/{mac}/{leaf}", payloads, retain)

    async def publish_readings(self, mac: str, readings: list[tuple[float, dict[str, Any]]]) -> None:
        """Telemetry as the JSON contract has it, each with its own ``timestamp`` (so history can be back-dated)."""
        payloads = [
            orjson.dumps({"timestamp": ts, "seq": seq, **values, "firmware_version": "1.4.2"})
            for seq, (ts, values) in enumerate(readings, start=1)
        ]
        await self.publish(mac, "data", payloads)

    async def close(self) -> None:
        """Stop the simulators and clear every retained status they left on the shared broker."""
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.macs:
            await asyncio.to_thread(_clear_retained, self.hub_mqtt_url, [f"devices/{mac}/status" for mac in self.macs])

    # --- the API -----------------------------------------------------------------------------
    async def call(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> tuple[int, Any]:
        """One API request (with ``Authorization: Bearer token`` when given); (status, JSON body or None)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.session.request(method, self.url + path, headers=headers, **kwargs) as response:
            body = await response.json() if response.content_type == "application/json" else None
            return response.status, body

    async def login(self) -> dict[str, Any]:
        """A session of the owner through the API (for tests that need a token outside the browser)."""
        status, body = await self.call("POST", "/api/auth/login", json={"username": OWNER, "password": OWNER_PASSWORD})
        assert status == 200, body
        return body


def _publish_blocking(url: str, topic: str, payloads: list[bytes | str], retain: bool) -> None:
    broker = BrokerAddress.from_url(url)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"dashboard-test-{random.getrandbits(48):x}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1, retain=retain) for payload in payloads]
        for info in infos:
            info.wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def _clear_retained(url: str, topics: list[str]) -> None:
    broker = BrokerAddress.from_url(url)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"dashboard-test-{random.getrandbits(48):x}")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for info in [client.publish(topic, b"", qos=1, retain=True) for topic in topics]:
            info.wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


async def sign_in(page: Any, next_path: str = "/") -> None:
    """Sign in through the sign-in page, as a person would, and wait for the app to show ``next_path``."""
    from playwright.async_api import expect

    await page.goto("/signin" if next_path == "/" else f"/signin?next={next_path}")
    await page.get_by_label("Username").fill(OWNER)
    await page.get_by_label("Password").fill(OWNER_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_function("path => location.pathname === path", arg=next_path.split("?")[0], timeout=TIMEOUT)
    await expect(page.locator(".connection")).to_have_text("Live", timeout=TIMEOUT)


def row(page: Any, mac: str) -> Any:
    """The fleet table's row of a node."""
    return page.locator(f'tr[data-node-id="{node_id(mac)}"]')
