"""One hub's OTA pieces, built in ``hub_setup`` and kept under ``hub.data[DATA_OTA]``."""

from __future__ import annotations

import asyncio
import logging

from hub import DATA_DATABASE, Hub, StorageUnavailable

from .api_firmware import FirmwareApi
from .api_serving import Assignments, ServingApi
from .catalogue import FirmwareCatalogue
from .config import SECTION, firmware_dir
from .links import DownloadLinks
from .manifest import ManifestKeys
from .store import FirmwareStore
from .web import Route

_LOGGER = logging.getLogger(__name__)

PURGE_INTERVAL = 600.0
"""Seconds between two purges of long-expired download links."""


class _NothingReleased:
    """Assignments before any rollout exists: nodes keep what they run."""

    async def for_node(self, node_id: str) -> str | None:
        return None

    async def for_group(self, group: str) -> str | None:
        return None


class OtaRuntime:
    """The store, the catalogue, the download links and the HTTP routes of one hub."""

    def __init__(self, hub: Hub) -> None:
        section = hub.config[SECTION]
        self.hub = hub
        database = hub.data[DATA_DATABASE]
        self.store = FirmwareStore(firmware_dir(section, hub.data_dir), max_size=section["max_image_size"])
        self.catalogue = FirmwareCatalogue(database, self.store, hub.bus, hub.clock)
        self.links = DownloadLinks(database, hub.clock)
        self.keys = ManifestKeys(hub.data_dir)
        self.assignments: Assignments = _NothingReleased()
        self._firmware_api = FirmwareApi(self.catalogue, self._firmware_in_use)
        self._serving_api = ServingApi(hub, self.store, self.catalogue, self.links, self.keys, lambda: self.assignments)

    def routes(self) -> list[Route]:
        """Every route of the plugin."""
        return [*self._firmware_api.routes(), *self._serving_api.routes()]

    async def start(self) -> None:
        """Housekeeping, where maintenance runs: orphaned image files, then expired links every few minutes."""
        if self.hub.role.runs_maintenance:
            await self.catalogue.reconcile()
            self.hub.create_task(self._purge_links(), "ota-purge-links")

    async def _purge_links(self) -> None:
        while True:
            try:
                purged = await self.links.purge()
            except StorageUnavailable as err:
                _LOGGER.warning("Cannot purge expired download links now: %s", err)
            else:
                if purged:
                    _LOGGER.debug("Purged %d expired download links", purged)
            await asyncio.sleep(PURGE_INTERVAL)

    def _firmware_in_use(self, sha256: str) -> str | None:
        return None
