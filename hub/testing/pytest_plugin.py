"""pytest fixtures for the hub and for plugin authors (loaded automatically via the ``pytest11`` entry point).

* ``hub_factory`` — build and start a hub in-process from a config dict, stopped after the test.
* ``hub_postgres_url`` / ``hub_mqtt_url`` — the real services on this machine (``hub_postgres_url`` is a
  fresh database per test, dropped afterwards).  A missing service skips the test with the reason, or
  fails it when ``HUB_REQUIRE_SERVICES=1`` (what CI sets), so a CI run can never go green by skipping.
* ``hub_free_port`` — a free loopback TCP port; ``hub_clock`` — a :class:`~hub.testing.clock.FakeClock`.

Loaded into every pytest run of an environment that has the hub installed, so it
imports no database driver up front: ``hub_postgres_url`` imports them when used.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hub import Hub

from .clock import FakeClock
from .hubs import make_hub
from .ports import free_port
from .services import require_service, unavailable

POSTGRES_URL_ENV = "HUB_TEST_POSTGRES_URL"
MQTT_URL_ENV = "HUB_TEST_MQTT_URL"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"

T = TypeVar("T")


def _run_in_own_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a private event loop in a helper thread.

    Sync fixtures may run while a test's event loop is running in this thread;
    a fresh thread keeps the two loops apart.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture
def hub_postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a fresh, empty PostgreSQL database on the real server, dropped after the test.

    The server is ``HUB_TEST_POSTGRES_URL`` (default: the local one); only its
    host, port and credentials are used.  Unreachable: skip, or fail under
    ``HUB_REQUIRE_SERVICES=1``.
    """
    from .postgres import ScratchError, create_scratch_database, display_url, drop_scratch_database

    server = require_service(os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL), "PostgreSQL")
    try:
        url = _run_in_own_loop(create_scratch_database(server))
    except ScratchError as err:
        unavailable(f"cannot create a scratch database on {display_url(server)}: {err}")
    try:
        yield url
    finally:
        _run_in_own_loop(drop_scratch_database(url))


@pytest.fixture
def hub_mqtt_url() -> str:
    """URL of the real MQTT broker (Mosquitto) on this machine."""
    return require_service(os.environ.get(MQTT_URL_ENV, DEFAULT_MQTT_URL), "MQTT broker (Mosquitto)")


@pytest.fixture
def hub_free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (see :func:`hub.testing.free_port`)."""
    return free_port()


@pytest.fixture
def hub_clock() -> FakeClock:
    """A clock the test moves by hand; pass it as ``hub_factory(clock=hub_clock)``."""
    return FakeClock()


HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
async def hub_factory(tmp_path: Path) -> AsyncIterator[HubFactory]:
    """Factory: ``await hub_factory(config, builtins=…, plugins=[(obj, name)], start=True)`` → a Hub.

    The arguments are :func:`~hub.testing.hubs.make_hub`'s, plus ``start``.  ``hub.data_dir``
    defaults to a folder under the test's tmp_path.  Every hub made is stopped when the test ends.
    """
    hubs: list[Hub] = []

    async def factory(config: dict[str, Any] | None = None, *, start: bool = True, **options: Any) -> Hub:
        raw = dict(config or {})
        raw["hub"] = {"data_dir": str(tmp_path / f"hub{len(hubs)}"), **raw.get("hub", {})}
        hub = make_hub(raw, **options)
        hubs.append(hub)
        if start:
            await hub.async_start()
        return hub

    yield factory
    for hub in reversed(hubs):
        await hub.async_stop()
