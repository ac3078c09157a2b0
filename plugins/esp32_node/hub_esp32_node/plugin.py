"""The hub plugin: hook implementations only (the work lives in the modules they call).

Registered through the ``hub`` entry-point group of the ``hub-esp32-node``
distribution, exactly as a third-party plugin would be.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub import Manifest, hookimpl

from . import cli
from .commands import ACK_FILTER, Esp32Commands
from .config import CONFIG_SCHEMA, SECTION
from .contract import DATA_FILTER, STATUS_FILTER
from .demo import start_demo, stop_demo
from .ingest import Esp32Ingest

if TYPE_CHECKING:
    from hub import Hub

MANIFEST = Manifest(name="esp32_node", after=("mqtt",), sections=(SECTION,))
"""Needs no other plugin: it handles messages from whichever transport feeds ``hub.messages``.  After mqtt,
so its ``hub_stop`` runs before the transport stops taking messages: the demo nodes' last words are heard."""


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """The ``esp32_node:`` section (demo settings)."""
    return {SECTION: CONFIG_SCHEMA}


@hookimpl
def hub_setup(hub: Hub) -> None:
    """Subscribe the contract's topics (QoS 1) with the synchronous hot-path handlers; deliver commands."""
    ingest = Esp32Ingest(hub)
    hub.messages.subscribe(DATA_FILTER, ingest.handle_data, qos=1)
    hub.messages.subscribe(STATUS_FILTER, ingest.handle_status, qos=1)
    commands = Esp32Commands(hub)
    hub.messages.subscribe(ACK_FILTER, commands.handle_ack, qos=1)
    hub.commands.add_deliverer("esp32_node", commands)


@hookimpl
def hub_cli_commands(register: Callable[..., None]) -> None:
    """``hub simulate``."""
    register(
        "simulate", cli.simulate, help="run simulated ESP32 nodes against an MQTT broker", arguments=cli.add_arguments
    )


@hookimpl
def hub_demo(hub: Hub, nodes: int) -> None:
    """``hub run --demo N``: simulated nodes inside the hub, against its own broker."""
    start_demo(hub, nodes)


@hookimpl
async def hub_stop(hub: Hub) -> None:
    """Stop the demo nodes while the transport still takes messages (see MANIFEST), so their ``offline`` is heard."""
    await stop_demo(hub)
