"""The hub plugin: hook implementations only (the work lives in the modules they call).

Registered through the ``hub`` entry-point group of the ``hub-esphome``
distribution, exactly as a third-party plugin would be.  Over MQTT the plugin
listens, and publishes only an operator's command to an entity's own
``command_topic``: it never sends ``homeassistant/status`` (which would make
every device republish its discovery), so it can share a broker with a Home
Assistant.  Nodes on ESPHome's native API are connected by :mod:`.native`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub import HubKey, Manifest, RateLimitedLogger, hookimpl

from . import cli
from .api import ProvisioningApi
from .config import CONFIG_SCHEMA, SECTION
from .contract import ESPHOME_DISCOVER_FILTER, discovery_filters
from .ingest import DiscoveryIngest
from .runtime import DATA_PROVISIONING, Provisioning

if TYPE_CHECKING:
    from hub import Hub

    from .confirm import Confirmations
    from .native.manager import NativeApi

_LOGGER = logging.getLogger(__name__)

MANIFEST = Manifest(name="esphome", after=("storage",), sections=(SECTION,))
"""Needs no other plugin (any transport feeding ``hub.messages`` will do).  After storage, when it is loaded:
``hub_setup`` rewires the entities storage restored."""

DATA_INGEST: HubKey[DiscoveryIngest] = HubKey("esphome.ingest")
"""hub.data key of this hub's :class:`DiscoveryIngest` (private to the plugin and its tests)."""
DATA_NATIVE: HubKey[NativeApi] = HubKey("esphome.native")
"""hub.data key of this hub's native API connections (private to the plugin and its tests)."""
DATA_CONFIRMATIONS: HubKey[Confirmations] = HubKey("esphome.confirmations")

EXPIRY_INTERVAL = 1.0
"""Seconds between checks of ``expire_after``."""


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """The ``esphome:`` section."""
    return {SECTION: CONFIG_SCHEMA}


@hookimpl
def hub_cli_commands(register: Callable[..., None]) -> None:
    """``hub esphome new|validate|compile|upload|list``."""
    cli.register_commands(register)


@hookimpl
def hub_setup(hub: Hub) -> None:
    """Re-wire the entities storage restored, subscribe the discovery topics, offer the entity commands."""
    from .commands import EsphomeCommands, register_actions
    from .confirm import Confirmations
    from .native.manager import NativeApi

    config = hub.config[SECTION]
    native = hub.data[DATA_NATIVE] = NativeApi(hub, config["native_api"])
    ingest = hub.data[DATA_INGEST] = DiscoveryIngest(hub, config["discovery_prefix"], native.on_device_info)
    confirmations = hub.data[DATA_CONFIRMATIONS] = Confirmations(hub)
    register_actions(hub, owner=MANIFEST.name)
    hub.commands.add_deliverer(MANIFEST.name, EsphomeCommands(hub, native, confirmations, config["command_timeout"]))
    restored = ingest.restore()
    if restored:
        _LOGGER.info("Listening again to the topics of %d discovered entities", restored)
    for topic_filter in discovery_filters(config["discovery_prefix"]):
        hub.messages.subscribe(topic_filter, ingest.handle_discovery, qos=1)
    if config["device_info"]:
        hub.messages.subscribe(ESPHOME_DISCOVER_FILTER, ingest.handle_device_info, qos=1)
    provisioning = hub.data[DATA_PROVISIONING] = Provisioning(hub, config)
    defined = provisioning.sync()
    if defined:
        _LOGGER.info("%d ESPHome node file(s) in %s", len(defined), provisioning.directory)


@hookimpl
async def hub_start(hub: Hub) -> None:
    """Start the ``expire_after`` check, the look at the node files and the native API connections (only where the
    hub takes input)."""
    if hub.role.takes_input:
        hub.create_task(_expire_loop(hub, hub.data[DATA_INGEST]), name="esphome-expiry")
        hub.create_task(hub.data[DATA_PROVISIONING].sync_loop(), name="esphome-node-files")
        await hub.data[DATA_NATIVE].start()


@hookimpl
async def hub_stop(hub: Hub) -> None:
    """Stop validate and compile jobs (their ESPHome processes are killed); close the native API connections (nodes
    keep their status: the hub stops, not they) and the command expectations."""
    provisioning = hub.data.get(DATA_PROVISIONING)
    if provisioning is not None:
        await provisioning.jobs.stop()
    native = hub.data.get(DATA_NATIVE)
    if native is not None:
        await native.stop()
    confirmations = hub.data.get(DATA_CONFIRMATIONS)
    if confirmations is not None:
        confirmations.close()


@hookimpl
def hub_http_routes(hub: Hub, register: Callable[..., None]) -> None:
    """``/api/esphome/…``: defined nodes, validate and compile jobs and their live logs, compiled binaries."""
    for route in ProvisioningApi(hub.data[DATA_PROVISIONING]).routes():
        register(route.method, route.path, route.handler, doc=route.doc)


async def _expire_loop(hub: Hub, ingest: DiscoveryIngest) -> None:
    errors = RateLimitedLogger(_LOGGER, interval=60.0)
    while True:
        await asyncio.sleep(EXPIRY_INTERVAL)
        try:
            ingest.routes.expire(hub.clock())
        except Exception:  # noqa: BLE001 - a bug here must not end expiry for good
            errors.log(logging.ERROR, "expiry", "expire_after check failed", exc_info=True)
