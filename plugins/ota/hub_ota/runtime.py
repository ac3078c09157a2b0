"""One hub's OTA pieces, built in ``hub_setup`` and kept under ``hub.data[DATA_OTA]``."""

from __future__ import annotations

from typing import Any

from hub import DATA_DATABASE, Hub

from .api_firmware import FirmwareApi
from .catalogue import FirmwareCatalogue
from .config import SECTION, firmware_dir
from .store import FirmwareStore


class OtaRuntime:
    """The store, the catalogue and the HTTP routes of one hub."""

    def __init__(self, hub: Hub) -> None:
        section = hub.config[SECTION]
        self.hub = hub
        self.store = FirmwareStore(firmware_dir(section, hub.data_dir), max_size=section["max_image_size"])
        self.catalogue = FirmwareCatalogue(hub.data[DATA_DATABASE], self.store, hub.bus, hub.clock)
        self._firmware_api = FirmwareApi(self.catalogue, self._firmware_in_use)

    def routes(self) -> list[tuple[str, str, Any, dict[str, Any]]]:
        """Every route: (method, path, handler, OpenAPI operation)."""
        return self._firmware_api.routes()

    def _firmware_in_use(self, sha256: str) -> str | None:
        return None
