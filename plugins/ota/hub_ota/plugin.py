"""The hub plugin: hook implementations only (the work lives in the modules they call).

Registered through the ``hub`` entry-point group of the ``hub-ota`` distribution, exactly as a third-party
plugin would be.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hub import Hub, Manifest, hookimpl

from .cli import register_commands
from .config import CONFIG_SCHEMA, SECTION
from .keys import DATA_OTA
from .runtime import OtaRuntime
from .schema import metadata

MANIFEST = Manifest(name="ota", requires=("storage", "http"), sections=(SECTION,))
"""It keeps its catalogue, links and rollouts in storage's database and serves uploads and downloads over http."""


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """The ``ota:`` section."""
    return {SECTION: CONFIG_SCHEMA}


@hookimpl
def hub_db_migrations(register: Callable[..., None]) -> None:
    """The plugin's tables (``ota_*``)."""
    register("ota", Path(__file__).with_name("migrations"), metadata)


@hookimpl
def hub_cli_commands(register: Callable[..., None]) -> None:
    """``hub firmware add|list``."""
    register_commands(register)


@hookimpl
def hub_setup(hub: Hub) -> None:
    """Open the store and the catalogue (every role: the CLI commands use them too)."""
    hub.data[DATA_OTA] = OtaRuntime(hub)


@hookimpl
async def hub_start(hub: Hub) -> None:
    """Carry on with the active rollouts (where input is taken); housekeeping where maintenance runs."""
    await hub.data[DATA_OTA].start()


@hookimpl
async def hub_stop(hub: Hub) -> None:
    """Stop the rollouts where they are; the next start carries on."""
    runtime = hub.data.get(DATA_OTA)
    if runtime is not None:
        await runtime.stop()


@hookimpl
def hub_http_routes(hub: Hub, register: Callable[..., None]) -> None:
    """The ``/api/ota/…`` routes, each with its OpenAPI operation (download and manifest are public)."""
    for route in hub.data[DATA_OTA].routes():
        register(route.method, route.path, route.handler, auth=route.auth, doc=route.doc)
