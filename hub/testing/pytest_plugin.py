"""pytest fixtures for the hub and for plugin authors (loaded automatically via the ``pytest11`` entry point).

* ``hub_factory`` — build and start a hub in-process from a config dict, stopped after the test.
* ``hub_postgres_url`` / ``hub_mqtt_url`` — the real services on this machine (``hub_postgres_url`` is a
  fresh database per test, dropped afterwards).  A missing service
  skips the test with the reason, or fails it when ``HUB_REQUIRE_SERVICES=1`` (what CI sets),
  so a CI run can never go green by skipping.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url

from hub.core.bootstrap import config_schemas, load_plugins
from hub.core.config import CORE_SCHEMA, validate_config
from hub.core.hub import Hub
from hub.core.plugins.manager import BUILTIN_PLUGINS
from hub.core.roles import ROLE_ALL, Role

POSTGRES_URL_ENV = "HUB_TEST_POSTGRES_URL"
MQTT_URL_ENV = "HUB_TEST_MQTT_URL"
REQUIRE_ENV = "HUB_REQUIRE_SERVICES"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"

T = TypeVar("T")


def services_required() -> bool:
    """True when missing services must fail tests instead of skipping them."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


def require_service(url: str, what: str) -> str:
    """Return ``url`` if its host:port accepts TCP connections; otherwise skip (or fail, in CI)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    try:
        with socket.create_connection((host, port or 0), timeout=2):
            return url
    except OSError as err:
        reason = f"{what} not reachable at {host}:{port} ({err}); set {REQUIRE_ENV}=1 to make this fail"
        if services_required():
            pytest.fail(f"{what} is required ({REQUIRE_ENV}=1) but not reachable at {host}:{port}: {err}")
        pytest.skip(reason)


async def create_scratch_database(server_url: str) -> str:
    """Create an empty database ``hub_test_<random>`` on the server of ``server_url``; returns its URL.

    Each test (and each benchmark run) gets its own, so parallel runs never see
    each other's rows.  Connects to the server's ``postgres`` database to do it.
    """
    url = make_url(server_url)
    name = f"hub_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(url.set(database="postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return url.set(database=name).render_as_string(hide_password=False)


async def drop_scratch_database(database_url: str) -> None:
    """Drop a database made by :func:`create_scratch_database`, disconnecting whoever still uses it."""
    url = make_url(database_url)
    admin = await asyncpg.connect(_asyncpg_dsn(url.set(database="postgres")))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await admin.close()


def _asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


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
    server = require_service(os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL), "PostgreSQL")
    try:
        url = _run_in_own_loop(create_scratch_database(server))
    except (OSError, asyncpg.PostgresError) as err:
        message = f"cannot create a scratch database on {make_url(server).render_as_string()}: {err}"
        if services_required():
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield url
    finally:
        _run_in_own_loop(drop_scratch_database(url))


@pytest.fixture
def hub_mqtt_url() -> str:
    """URL of the real MQTT broker (Mosquitto) on this machine."""
    return require_service(os.environ.get(MQTT_URL_ENV, DEFAULT_MQTT_URL), "MQTT broker (Mosquitto)")


HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
async def hub_factory(tmp_path: Path) -> AsyncIterator[HubFactory]:
    """Factory: ``await hub_factory(config, builtins=…, plugins=[(obj, name)], start=True)`` → a Hub.

    ``config`` is the dict config.yaml would hold; ``hub.data_dir`` defaults to the test's
    tmp_path.  Entry-point plugins are not loaded unless ``entry_points=True``.  Every hub
    made is stopped when the test ends.
    """
    hubs: list[Hub] = []

    async def factory(
        config: dict[str, Any] | None = None,
        *,
        builtins: Iterable[str] = BUILTIN_PLUGINS,
        plugins: Iterable[tuple[Any, str]] = (),
        entry_points: bool = False,
        role: Role = ROLE_ALL,
        start: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> Hub:
        manager = load_plugins(builtins, entry_point_plugins=entry_points)
        for plugin, name in plugins:
            manager.register(plugin, name)
        raw = dict(config or {})
        raw.setdefault("hub", {})
        raw["hub"] = {"data_dir": str(tmp_path / f"hub{len(hubs)}"), **raw["hub"]}
        validated = validate_config(raw, {"hub": CORE_SCHEMA, **config_schemas(manager)})
        extra = {"clock": clock} if clock is not None else {}
        hub = Hub(validated, manager, role=role, **extra)
        hubs.append(hub)
        if start:
            await hub.async_start()
        return hub

    yield factory
    for hub in reversed(hubs):
        await hub.async_stop()
