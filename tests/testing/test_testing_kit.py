"""The test kit plugin authors get with hub-core: fixtures and helpers behave as docs/plugin-api.md says."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import aiohttp
import pytest

from hub import DATA_HTTP_URL
from hub.testing import FakeClock, create_user_and_token, free_port, wait_until

HTTP_ONLY = ("hub.plugins.http",)


async def test_wait_until_returns_the_first_truthy_value() -> None:
    calls = []

    def predicate() -> list[int]:
        calls.append(1)
        return calls if len(calls) == 3 else []

    assert await wait_until(predicate, interval=0) == [1, 1, 1]


async def test_wait_until_awaits_an_async_predicate() -> None:
    seen: list[int] = []

    async def predicate() -> int:
        await asyncio.sleep(0)
        seen.append(len(seen))
        return seen[-1]

    assert await wait_until(predicate, interval=0) == 1


async def test_wait_until_fails_after_its_timeout_saying_what_it_waited_for() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError) as failed:
        await wait_until(lambda: 0, timeout=0.05, message="the answer")
    assert time.monotonic() - started >= 0.05
    assert str(failed.value) == "timed out after 0.05 s waiting for the answer (last value: 0)"


async def test_wait_until_lets_a_failing_predicate_raise() -> None:
    with pytest.raises(ZeroDivisionError):
        await wait_until(lambda: 1 / 0)


def test_free_ports_can_be_bound(hub_free_port: int) -> None:
    for port in (hub_free_port, free_port()):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


async def test_hub_clock_drives_the_hub(hub_factory, hub_clock: FakeClock) -> None:
    hub = await hub_factory(builtins=(), clock=hub_clock)
    node = hub.registry.get_or_register("aa:bb:cc:dd:ee:ff")
    assert node.first_seen == hub_clock.now
    hub_clock.advance(60)
    hub.registry.report_availability(node, True)
    assert node.last_seen == hub_clock.now


def test_loading_the_pytest_plugin_imports_no_database_driver() -> None:
    code = (
        "import sys, hub.testing.pytest_plugin; "
        "print(sorted(m for m in ('asyncpg', 'sqlalchemy', 'aiohttp', 'gmqtt') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def _status(url: str, token: str) -> int:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/api/auth/me", headers={"Authorization": f"Bearer {token}"}) as response:
            return response.status


async def test_a_user_and_token_made_before_start(hub_factory) -> None:
    hub = await hub_factory({"http": {"port": 0}}, builtins=HTTP_ONLY, start=False)
    user = await create_user_and_token(hub, "alice")
    assert user.access_token is None and user.refresh_token is None  # no server yet, so no session
    await hub.async_start()
    assert await _status(hub.data[DATA_HTTP_URL], user.token) == 200
    assert user.headers == {"Authorization": f"Bearer {user.token}"}


async def test_a_user_and_token_made_on_a_running_hub_come_with_a_session(hub_factory) -> None:
    hub = await hub_factory({"http": {"port": 0}}, builtins=HTTP_ONLY)
    owner = await create_user_and_token(hub)
    guest = await create_user_and_token(hub, "guest", owner=False)
    url = hub.data[DATA_HTTP_URL]
    for user in (owner, guest):
        assert user.access_token and user.refresh_token
        assert await _status(url, user.token) == 200
        assert await _status(url, user.access_token) == 200
    async with aiohttp.ClientSession(headers=guest.headers) as session:
        async with session.get(f"{url}/api/auth/me") as response:
            me = await response.json()
    assert me["username"] == "guest" and not me["is_owner"]


def test_the_kit_exports_the_node_simulator() -> None:
    import hub.simulator
    import hub.testing

    assert [name for name in hub.testing.__all__ if not hasattr(hub.testing, name)] == []
    assert hub.testing.SimulatedNode is hub.simulator.SimulatedNode
    assert hub.testing.OtaBehaviour is hub.simulator.OtaBehaviour
    with pytest.raises(AttributeError, match="no_such_helper"):
        hub.testing.no_such_helper
