"""The rollout engine: creates rollouts, runs the active ones (one task each), feeds them what nodes do, writes
their progress and announces it.

It runs in one process at a time (the holder of the OTA lock, see :class:`~hub_ota.runtime.OtaRuntime`), which
sends the commands. What nodes do reaches the runs through synchronous event listeners that only look up a dict
and change memory: ``command_updated`` (the commands of rollouts), ``node_updated`` (a new ``firmware_version``),
``availability_reported``/``node_status_changed`` (a node went offline: it rebooted), ``state_reported`` (a node's
first report after that; on an API instance, whose readings come from workers through the RabbitMQ event fan-out,
``state_changed`` with ``origin``) and ``node_removed``. Stopped (the lock lost or handed over), it writes what
changed and forgets its runs: the next holder takes them back from the database. Every
:data:`FLUSH_INTERVAL` seconds what changed is written (:class:`~hub_ota.rollout_store.RolloutStore`) and fired
as ``ota_rollout_updated`` with the rollout's summary and the nodes that changed, which is what a dashboard
shows live. At start the engine takes back the rollouts that were running or paused, with their nodes where they
were; a node's pending command of its rollout, sent just before a crash, is adopted rather than sent again.

A node is in at most one active rollout: a rollout that would include a node another one has not finished with
is refused.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from typing import Any

from hub import (
    DATA_HTTP_URL,
    EVENT_AVAILABILITY_REPORTED,
    EVENT_COMMAND_UPDATED,
    EVENT_NODE_REMOVED,
    EVENT_NODE_STATUS_CHANGED,
    EVENT_NODE_UPDATED,
    EVENT_STATE_CHANGED,
    EVENT_STATE_REPORTED,
    STATUS_OFFLINE,
    CommandNotFound,
    CommandRejected,
    Event,
    Hub,
    HubError,
    RateLimitedLogger,
    StorageUnavailable,
    select_nodes,
)

from .catalogue import FirmwareCatalogue
from .errors import FirmwareNotFound
from .events import EVENT_OTA_ROLLOUT_UPDATED, OtaRolloutUpdatedData
from .links import PURPOSE_COMMAND, DownloadLinks, token_hash
from .rollout_model import ABORTED, FINAL, IN_FLIGHT, PENDING, RUNNING, SETTINGS, SKIPPED, NodeProgress, Rollout
from .rollout_run import FIRMWARE_UPDATE, InvalidTransition, RolloutRun
from .rollout_store import RolloutStore

_LOGGER = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.25
"""Seconds between two writes of what changed (and two ``ota_rollout_updated`` events per rollout at most)."""
LINK_GRACE = 60.0
"""Seconds a command's download link outlives the node's timeout (a download that started just in time)."""


class RolloutRefused(HubError):
    """A rollout that cannot be created: ``code`` says why (``empty_target``, ``nodes_busy``, ``nothing_to_update``)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class RolloutEngine:
    """See the module docstring."""

    def __init__(self, hub: Hub, store: RolloutStore, catalogue: FirmwareCatalogue, links: DownloadLinks) -> None:
        self.hub = hub
        self.store = store
        self._catalogue = catalogue
        self._links = links
        self._section = hub.config["ota"]
        self.runs: dict[str, RolloutRun] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._node_runs: dict[str, RolloutRun] = {}
        self._commands: dict[str, tuple[RolloutRun, str]] = {}
        self._changed: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._unlisten: list[Any] = []
        self._flusher: asyncio.Task[None] | None = None
        self._log = RateLimitedLogger(_LOGGER)
        self._creating = asyncio.Lock()
        """One creation at a time, so two cannot both claim a node that is in neither yet."""

    @property
    def running(self) -> bool:
        return self._flusher is not None

    # --- lifecycle -------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen, take back the active rollouts, and start writing progress.

        A second start (this process holds the OTA lock again) forgets what it drove before: the database has it,
        and another process may have moved it on meanwhile."""
        self.runs, self._tasks, self._node_runs, self._commands, self._changed = {}, {}, {}, {}, set()
        bus = self.hub.bus
        self._unlisten = [
            bus.listen(EVENT_COMMAND_UPDATED, self._on_command),
            bus.listen(EVENT_NODE_UPDATED, self._on_node_updated),
            bus.listen(EVENT_AVAILABILITY_REPORTED, self._on_availability),
            bus.listen(EVENT_NODE_STATUS_CHANGED, self._on_status),
            bus.listen(EVENT_STATE_REPORTED, self._on_report),
            bus.listen(EVENT_STATE_CHANGED, self._on_remote_report),
            bus.listen(EVENT_NODE_REMOVED, self._on_removed),
        ]
        for rollout in await self.store.load_active():
            try:
                firmware = await self._catalogue.get(rollout.sha256)
            except FirmwareNotFound:
                rollout.status, rollout.reason = ABORTED, "aborted: its firmware image is gone"
                rollout.finished_at = self.hub.clock()
                rollout.record(rollout.finished_at, ABORTED, "ota", rollout.reason)
                await self.store.save(rollout, ())
                continue
            run = RolloutRun(self, rollout, firmware)
            self._adopt(run)
            self._add(run)
            _LOGGER.info(
                "Rollout %s of %s carries on (%s, stage %d)",
                rollout.id,
                rollout.version,
                rollout.status,
                rollout.stage + 1,
            )
        self._flusher = self.hub.create_task(self._flush_loop(), "ota-rollouts-flush")

    async def stop(self) -> None:
        """Stop every run where it is and write what is left; the next start carries on from there."""
        tasks = [*self._tasks.values(), *([self._flusher] if self._flusher else []), *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._flusher = None
        for unlisten in self._unlisten:
            unlisten()
        self._unlisten = []
        await self.flush()

    # --- operators -----------------------------------------------------------------------------------------------
    async def create(self, body: dict[str, Any], by: str) -> Rollout:
        """A new rollout from a validated ``POST /api/ota/rollouts`` body; it starts at once."""
        async with self._creating:
            return await self._create(body, by)

    async def _create(self, body: dict[str, Any], by: str) -> Rollout:
        firmware = await self._catalogue.find(body["firmware"])
        selected = select_nodes(self.hub.registry, body["target"])
        if not selected:
            raise RolloutRefused("the target selects no node", code="empty_target")
        busy = [node.node_id for node in selected if node.node_id in self._node_runs]
        if busy:
            raise RolloutRefused(f"{len(busy)} nodes are in another active rollout, e.g. {busy[0]}", code="nodes_busy")
        to_update = [node for node in selected if node.firmware_version != firmware.version]
        if not to_update:
            raise RolloutRefused(
                f"the target selects no node that is not on {firmware.version}", code="nothing_to_update"
            )
        random.shuffle(to_update)  # canaries are a random sample, not the lowest MACs
        now = self.hub.clock()
        rollout = Rollout(
            id=uuid.uuid4().hex,
            sha256=firmware.sha256,
            version=firmware.version,
            target=body["target"],
            stages=body["stages"],
            settings={key: body[key] for key in SETTINGS},
            created_by=by,
            created_at=now,
            name=body.get("name"),
            updated_at=now,
        )
        for position, node in enumerate(to_update):
            rollout.nodes[node.node_id] = NodeProgress(
                node.node_id, position, from_version=node.firmware_version, updated_at=now
            )
        for node in selected:
            if node.node_id not in rollout.nodes:
                rollout.nodes[node.node_id] = NodeProgress(
                    node.node_id,
                    None,
                    SKIPPED,
                    from_version=node.firmware_version,
                    detail=f"already on {firmware.version}",
                    finished_at=now,
                    updated_at=now,
                )
        rollout.record(now, "created", by, f"{len(to_update)} nodes to update, stages of {rollout.stage_sizes()}")
        await self.store.insert(rollout)
        _LOGGER.info("Rollout %s of %s to %d nodes created by %s", rollout.id, firmware.version, len(to_update), by)
        run = RolloutRun(self, rollout, firmware)
        self._add(run)
        self.changed(run)
        return rollout

    def act(self, rollout_id: str, action: str, by: str) -> Rollout | None:
        """``pause``, ``resume`` or ``cancel`` an active rollout; None when it is not active here."""
        run = self.runs.get(rollout_id)
        if run is None or not run.rollout.active:
            return None
        getattr(run, action)(by)
        _LOGGER.info("Rollout %s %s by %s", rollout_id, action, by)
        if run.rollout.active and self._tasks[rollout_id].done():  # it stopped on an error: give it a new task
            self._tasks[rollout_id] = self.hub.create_task(self._drive(run), f"ota-rollout-{rollout_id}")
        return run.rollout

    # --- what runs ask of the engine -----------------------------------------------------------------------------
    async def download_url(self, node_id: str, sha256: str, timeout: float, rollout_id: str) -> tuple[str, str]:
        """A fresh link for one attempt: its URL, and the hash to revoke it by."""
        base = self._section.get("public_url") or self.hub.data.get(DATA_HTTP_URL)
        if not base:
            raise HubError("this hub serves no HTTP: set ota: public_url")
        lifetime = timeout + LINK_GRACE
        token = await self._links.mint(node_id, sha256, lifetime, purpose=PURPOSE_COMMAND, rollout_id=rollout_id)
        return f"{base}/api/ota/download/{token}", token_hash(token)

    def watch_command(self, command_id: str, run: RolloutRun, node_id: str) -> None:
        self._commands[command_id] = (run, node_id)

    def drop_command(self, command_id: str, by: str) -> None:
        """Stop following a command and withdraw it if it is still pending."""
        self._commands.pop(command_id, None)
        command = self.hub.commands.get(command_id)
        if command is not None and not command.done:
            try:
                self.hub.commands.cancel(command_id, by=by)
            except (CommandNotFound, CommandRejected):
                pass

    def revoke_link(self, digest: str) -> None:
        self._spawn(self._links.revoke(digest=digest))

    def unwatch_node(self, node_id: str, run: RolloutRun) -> None:
        if self._node_runs.get(node_id) is run:
            del self._node_runs[node_id]

    def changed(self, run: RolloutRun) -> None:
        self._changed.add(run.rollout.id)

    def finished(self, run: RolloutRun) -> None:
        """The rollout ended: its nodes are free for another (it is dropped from memory once written)."""
        for node_id in [n for n, r in self._node_runs.items() if r is run]:
            del self._node_runs[node_id]
        for command_id in [c for c, (r, _) in self._commands.items() if r is run]:
            del self._commands[command_id]

    # --- progress ---------------------------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Write what changed and announce it."""
        for rollout_id in list(self._changed):
            run = self.runs.get(rollout_id)
            self._changed.discard(rollout_id)
            if run is None:
                continue
            nodes = [run.rollout.nodes[node_id] for node_id in run.dirty_nodes]
            run.dirty_nodes, run.dirty = set(), False
            # One snapshot for the event, taken with the one save() writes: what is announced is what was stored.
            data: OtaRolloutUpdatedData = {
                "rollout": run.rollout.summary(dict(run.counts)),
                "nodes": [node.as_dict() for node in nodes],
            }
            try:
                await self.store.save(run.rollout, nodes)
            except BaseException as err:  # not written: the next flush writes it (stop's, if this one was cancelled)
                run.dirty_nodes.update(node.node_id for node in nodes)
                run.dirty = True
                self._changed.add(rollout_id)
                if not isinstance(err, StorageUnavailable):
                    raise
                self._log.warning("flush", "Cannot write rollout progress now, will retry: %s", err)
                continue
            self.hub.bus.fire(EVENT_OTA_ROLLOUT_UPDATED, data)
            if not run.rollout.active and not run.dirty:
                self.runs.pop(rollout_id, None)
                self._tasks.pop(rollout_id, None)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            await self.flush()

    # --- internals ------------------------------------------------------------------------------------------------
    def _add(self, run: RolloutRun) -> None:
        self.runs[run.rollout.id] = run
        for node in run.rollout.nodes.values():
            if node.status not in FINAL:
                self._node_runs[node.node_id] = run
            if node.status in IN_FLIGHT and node.command_id is not None:
                self._commands[node.command_id] = (run, node.node_id)
        self._tasks[run.rollout.id] = self.hub.create_task(self._drive(run), f"ota-rollout-{run.rollout.id}")

    async def _drive(self, run: RolloutRun) -> None:
        """Run the rollout; a bug in it pauses it (with the error as the reason) rather than leaving it stuck."""
        try:
            await run.run()
        except Exception as err:
            _LOGGER.exception("Rollout %s stopped on an error", run.rollout.id)
            if run.rollout.status == RUNNING:
                run.pause("ota", f"paused: internal error ({type(err).__name__}: {err}); see the hub's log")

    def _adopt(self, run: RolloutRun) -> None:
        """After a restart: nodes that reported the new version meanwhile have succeeded, and a pending command of
        this rollout (sent just before a crash, before its node's progress was written) is followed, not resent."""
        registry = self.hub.registry
        for node in run.rollout.nodes.values():
            current = registry.get(node.node_id)
            if node.status in IN_FLIGHT and current is not None and current.firmware_version == run.rollout.version:
                run.on_version(node.node_id, current.firmware_version)
            if node.status == PENDING:
                for command in self.hub.commands.pending(node.node_id):
                    if command.sender == run.sender and command.action == FIRMWARE_UPDATE:
                        run.adopt(node, command)
                        self._commands[command.id] = (run, node.node_id)
                        break

    def _spawn(self, coro: Any) -> None:
        task = self.hub.create_task(coro, "ota-rollout-housekeeping")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _run_of(self, node_id: str) -> RolloutRun | None:
        return self._node_runs.get(node_id)

    def _on_command(self, event: Event) -> None:
        command = event.data["command"]
        entry = self._commands.get(command["id"])
        if entry is not None:
            run, node_id = entry
            if command["status"] in ("succeeded", "failed", "expired", "cancelled"):
                del self._commands[command["id"]]
            run.on_command(node_id, command)

    def _on_node_updated(self, event: Event) -> None:
        changes = event.data["changes"]
        if "firmware_version" in changes and (run := self._run_of(event.data["node_id"])) is not None:
            run.on_version(event.data["node_id"], changes["firmware_version"])

    def _on_availability(self, event: Event) -> None:
        if not event.data["online"] and (run := self._run_of(event.data["node_id"])) is not None:
            run.on_away(event.data["node_id"])

    def _on_status(self, event: Event) -> None:
        if event.data["new"] == STATUS_OFFLINE and (run := self._run_of(event.data["node_id"])) is not None:
            run.on_away(event.data["node_id"])

    def _on_report(self, event: Event) -> None:
        if (run := self._run_of(event.data["node_id"])) is not None:
            run.on_report(event.data["node_id"])

    def _on_remote_report(self, event: Event) -> None:
        """Readings a worker received reach an API instance as ``state_changed`` with ``origin`` (the fan-out)."""
        if "origin" in event.data:
            self._on_report(event)

    def _on_removed(self, event: Event) -> None:
        if (run := self._run_of(event.data["node_id"])) is not None:
            run.on_removed(event.data["node_id"])


__all__ = ["InvalidTransition", "RolloutEngine", "RolloutRefused"]
