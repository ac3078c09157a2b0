"""One hub's OTA pieces, built in ``hub_setup`` and kept under ``hub.data[DATA_OTA]``."""

from __future__ import annotations

import asyncio
import logging

import voluptuous as vol

from hub import DATA_DATABASE, EVENT_NODE_UPDATED, Event, Hub, Leadership, NodeUpdatedData, StorageUnavailable
from hub.web import Route

from . import names
from .api_firmware import FirmwareApi
from .api_rollouts import RolloutsApi
from .api_serving import ServingApi
from .catalogue import FirmwareCatalogue
from .config import SECTION, base_url, firmware_dir
from .links import DownloadLinks
from .manifest import ManifestKeys
from .rollout_engine import RolloutEngine
from .rollout_store import RolloutStore
from .store import FirmwareStore

_LOGGER = logging.getLogger(__name__)

PURGE_INTERVAL = 600.0
"""Seconds between two purges of long-expired download links."""
LOCK_KEY = 0x6875622D6F746172  # "hub-otar": the advisory lock of the process that drives the rollouts
ELECTION_WAIT = 5.0
"""Seconds the start waits for the first election round, so a lone process drives rollouts from its first request."""


def _stable_name(data: dict[str, str]) -> dict[str, str]:
    if not names.valid(data["kind"], data["name"]):
        raise vol.Invalid(f"not a kind of name and a name: {data['kind']!r}, {data['name']!r}")
    return data


MANIFEST_URL_SCHEMA = vol.All(
    vol.Schema({vol.Required("kind"): str, vol.Required("name"): str, vol.Optional("base_url"): base_url}),
    _stable_name,
)
"""``ota.manifest_url``: ``kind`` and ``name`` (a node's stable name, see :mod:`.names`), optional ``base_url``."""


class _Released:
    """What the rollouts released, as the manifests ask it."""

    def __init__(self, store: RolloutStore) -> None:
        self._store = store

    async def for_node(self, node_id: str) -> str | None:
        return await self._store.released_to_node(node_id)

    async def for_group(self, group: str) -> str | None:
        return await self._store.released_to_group(group)


class OtaRuntime:
    """The store, the catalogue, the download links, the rollouts and the HTTP routes of one hub.

    Rollouts run in exactly one process: the engine exists in the roles that serve HTTP (operators create and steer
    rollouts there; ``all``, ``api``) and runs only while this process holds the OTA lock (a PostgreSQL advisory
    lock with failover, :class:`hub.Leadership`; on SQLite a process always holds it).  Two API instances on one
    database never both drive a rollout; when the holder stops or dies another takes over and carries on from the
    progress written to the database.  Elsewhere the rollout routes read the database and refuse changes.
    """

    def __init__(self, hub: Hub) -> None:
        section = hub.config[SECTION]
        self.hub = hub
        database = hub.data[DATA_DATABASE]
        self.store = FirmwareStore(firmware_dir(section, hub.data_dir), max_size=section["max_image_size"])
        self.catalogue = FirmwareCatalogue(database, self.store, hub.bus, hub.clock)
        self.links = DownloadLinks(database, hub.clock)
        self.keys = ManifestKeys(hub.data_dir)
        self.rollouts = RolloutStore(database)
        self.engine = RolloutEngine(hub, self.rollouts, self.catalogue, self.links) if hub.role.serves_http else None
        self.leadership = (
            Leadership(database, hub.metrics, key=LOCK_KEY, job="drives the OTA rollouts", gauge="ota_rollouts_leader")
            if self.engine is not None
            else None
        )
        self._switch = asyncio.Lock()
        self._switching: set[asyncio.Task[None]] = set()
        self._stopping = False
        serving = ServingApi(hub, self.store, self.catalogue, self.links, self.keys, _Released(self.rollouts))
        self._apis = (
            FirmwareApi(self.catalogue, self._firmware_in_use),
            serving,
            RolloutsApi(self.rollouts, self.engine),
        )
        hub.services.register("ota", "manifest_url", serving.manifest_url_service, MANIFEST_URL_SCHEMA)

    def routes(self) -> list[Route]:
        """Every route of the plugin."""
        return [route for api in self._apis for route in api.routes()]

    async def start(self) -> None:
        """Spend a node's links when it reports a new version; carry on with the active rollouts; housekeeping where
        maintenance runs (orphaned image files, expired links every few minutes)."""
        self.hub.bus.listen(EVENT_NODE_UPDATED, self._on_node_updated)
        if self.leadership is not None:
            self.leadership.on_change(self._on_leadership)
            self.leadership.start(self.hub.create_task)
            await self.leadership.decided(ELECTION_WAIT)
            if self.leadership.leader and not self.leadership.elected:  # SQLite: no election, no change to hear
                await self._drive(True)
            await asyncio.gather(*self._switching)  # elected at the first round: running before the first request
        if self.hub.role.runs_maintenance:
            await self.catalogue.reconcile()
            self.hub.create_task(self._purge_links(), "ota-purge-links")

    async def stop(self) -> None:
        """Stop the rollouts where they are (written down, to carry on at the next start), then hand the lock over."""
        if self.leadership is not None:
            self._stopping = True
            await asyncio.gather(*self._switching, return_exceptions=True)
            await self._drive(False)
            await self.leadership.stop()

    def _on_leadership(self, leader: bool) -> None:
        if self._stopping:
            return
        task = self.hub.create_task(self._drive(leader), "ota-rollouts-leadership")
        self._switching.add(task)
        task.add_done_callback(self._switching.discard)

    async def _drive(self, leader: bool) -> None:
        """Start the engine (taking back the active rollouts from the database) or stop it (writing their progress)."""
        assert self.engine is not None
        async with self._switch:
            if leader and not self.engine.running and (self.leadership is None or self.leadership.leader):
                await self.engine.start()
            elif not leader and self.engine.running:
                await self.engine.stop()

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

    def _on_node_updated(self, event: Event[NodeUpdatedData]) -> None:
        if "firmware_version" in event.data["changes"]:
            self.hub.create_task(self._spend(event.data["node_id"]), "ota-spend-links")

    async def _spend(self, node_id: str) -> None:
        try:
            await self.links.spend(node_id)
        except StorageUnavailable as err:  # they expire anyway
            _LOGGER.warning("Cannot mark the download links of %s as used: %s", node_id, err)

    async def _firmware_in_use(self, sha256: str) -> str | None:
        active = await self.rollouts.uses(sha256)
        return f"rollout {active[0]} is using it: cancel it first" if active else None
