"""One hub's provisioning: the defined nodes, the ESPHome runs on them, and the rows the API shows."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from hub import HubKey, RateLimitedLogger

from .defined import DefinedNodes
from .firmware import FirmwareError, NodeFile
from .jobs import Job, JobManager
from .provision import Provisioner
from .status import node_row

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)

DATA_PROVISIONING: HubKey[Provisioning] = HubKey("esphome.provisioning")
"""hub.data key of this hub's :class:`Provisioning`: the defined nodes and the jobs on them."""
SYNC_INTERVAL: Final = 10.0
"""Seconds between two looks at the firmware folder (new, changed and removed node files)."""


class Provisioning:
    """See the module docstring; ``hub.data[DATA_PROVISIONING]``."""

    def __init__(self, hub: Hub, config: dict[str, Any]) -> None:
        self.directory = Path(config["firmware_dir"])
        self.defined = DefinedNodes(hub, self.directory)
        self.provisioner = Provisioner(self.directory, config["executable"], hub.services)
        self.jobs = JobManager(hub, self.provisioner, on_finished=self._finished)
        self._log = RateLimitedLogger(_LOGGER, interval=300.0)

    def sync(self) -> list[NodeFile]:
        try:
            return self.defined.sync()
        except OSError as err:  # the folder is unreadable: keep what the registry has
            self._log.warning("sync", "Cannot read the ESPHome node files in %s: %s", self.directory, err)
            return []

    async def sync_loop(self) -> None:
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            self.sync()

    def node_file(self, name: str) -> NodeFile:
        """The file defining node ``name`` (read now); KeyError when there is none."""
        self.sync()
        return self.defined.defined[name]

    def executable_status(self) -> dict[str, Any]:
        try:
            return {"found": True, "path": str(self.provisioner.executable()), "message": None}
        except FirmwareError as err:
            return {"found": False, "path": None, "message": str(err)}

    def rows(self, names: set[str] | None = None) -> list[dict[str, Any]]:
        files = self.sync()
        known = self.defined.by_name()
        shared = self.provisioner.digests.shared_files()
        return [
            node_row(f, known.get(f.name) if f.name else None, self.provisioner.digests, shared, self._job(f))
            for f in files
            if names is None or f.name in names
        ]

    def _job(self, node_file: NodeFile) -> Job | None:
        if node_file.name is None:
            return None
        return self.jobs.active(node_file.name) or next(iter(self.jobs.jobs(node_file.name)), None)

    def _finished(self, job: Job) -> None:
        _LOGGER.info("esphome %s of %s by %s: %s", job.kind, job.node, job.by or "-", job.status)
