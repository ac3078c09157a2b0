"""The hub plugin: hook implementations only (the work lives in the modules they call).

Registered through the ``hub`` entry-point group of the ``hub-esphome``
distribution, exactly as a third-party plugin would be.  The plugin only
listens: it never publishes, so it cannot disturb a Home Assistant sharing the
broker (it never sends ``homeassistant/status``, which would make every device
republish its discovery).
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

_LOGGER = logging.getLogger(__name__)

MANIFEST = Manifest(name="esphome", after=("storage",), sections=(SECTION,))
"""Needs no other plugin (any transport feeding ``hub.messages`` will do).  After storage, when it is loaded:
``hub_setup`` rewires the entities storage restored."""

DATA_INGEST: HubKey[DiscoveryIngest] = HubKey("esphome.ingest")
"""hub.data key of this hub's :class:`DiscoveryIngest` (private to the plugin and its tests)."""

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
    """Re-wire the entities storage restored, then subscribe the discovery topics (synchronous handlers)."""
    config = hub.config[SECTION]
    ingest = hub.data[DATA_INGEST] = DiscoveryIngest(hub, config["discovery_prefix"])
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
def hub_start(hub: Hub) -> None:
    """Start the ``expire_after`` check and the look at the node files (only where the hub takes input)."""
    if hub.role.takes_input:
        hub.create_task(_expire_loop(hub, hub.data[DATA_INGEST]), name="esphome-expiry")
        hub.create_task(hub.data[DATA_PROVISIONING].sync_loop(), name="esphome-node-files")


@hookimpl
async def hub_stop(hub: Hub) -> None:
    """Stop validate and compile jobs (their ESPHome processes are killed)."""
    provisioning = hub.data.get(DATA_PROVISIONING)
    if provisioning is not None:
        await provisioning.jobs.stop()


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
