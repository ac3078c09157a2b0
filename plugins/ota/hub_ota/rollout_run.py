"""One active rollout, driven by one task: it starts nodes stage by stage at the configured rate, follows each
node to its verdict, judges the failure ratio and ends the rollout (see :mod:`hub_ota.rollout_model`).

A node's attempt: a fresh single-use download link, then ``FIRMWARE_UPDATE {url, version, sha256, md5, size}``
through ``hub.commands``. The command's verdict only tells what the node said: the node has updated when it
*reports* the new version (``node_updated``). Once it took the command (``installing``), going offline means it
rebooted, and its next report settles the attempt: the new version, or a rollback to another one. A node that
no integration can send commands to (an ESPHome device polling its manifest) is released through its manifest
and judged the same way. Every change goes through :meth:`RolloutRun._set`, which keeps the counts, marks the node
for the next write and wakes the task; the event listeners that feed it (:class:`~hub_ota.rollout_engine.RolloutEngine`)
only change memory.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from typing import TYPE_CHECKING, Any

from hub import Command, CommandRejected, HubError

from .catalogue import Firmware
from .rollout_model import (
    ABORTED,
    CANCELLED,
    COMPLETED,
    FAILED,
    FINAL,
    IN_FLIGHT,
    INSTALLING,
    PAUSED,
    PENDING,
    RUNNING,
    SENDING,
    SKIPPED,
    SUCCEEDED,
    NodeProgress,
    Rollout,
)

if TYPE_CHECKING:
    from .rollout_engine import RolloutEngine

_LOGGER = logging.getLogger(__name__)

FIRMWARE_UPDATE = "FIRMWARE_UPDATE"
MAX_SLEEP = 30.0
COMMAND_FAILED = frozenset({"failed", "expired", "cancelled"})


class InvalidTransition(HubError):
    """Pause, resume or cancel asked of a rollout in a status that does not allow it."""


class RolloutRun:
    """The live state of one rollout; see the module docstring."""

    def __init__(self, engine: RolloutEngine, rollout: Rollout, firmware: Firmware) -> None:
        self.rollout = rollout
        self.firmware = firmware
        self.sender = f"ota/rollout/{rollout.id}"
        self.dirty = True
        self.dirty_nodes: set[str] = set()
        self.counts = rollout.counts()
        self._engine = engine
        self._hub = engine.hub
        self._settings = rollout.settings
        self._order = rollout.ordered()
        self._sizes = rollout.stage_sizes()
        self._cursor = 0
        self._retries: list[tuple[float, int, str]] = []
        self._deadlines: list[tuple[float, str]] = []
        self._next_start = 0.0
        self._wake = asyncio.Event()
        end = self._sizes[rollout.stage] if self._sizes else 0
        self._unfinished = sum(1 for node in self._order[:end] if node.status not in FINAL)
        for node in rollout.nodes.values():
            if node.status in IN_FLIGHT and node.deadline is not None:
                heapq.heappush(self._deadlines, (node.deadline, node.node_id))
            elif node.status == PENDING and node.attempts:
                heapq.heappush(self._retries, (node.retry_at or 0.0, node.position or 0, node.node_id))

    # --- the task ---------------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Drive the rollout until it ends (cancelled with the hub, it resumes from storage at the next start)."""
        loop = asyncio.get_running_loop()
        while self.rollout.active:
            self._wake.clear()
            now = self._hub.clock()
            self._expire(now)
            delay = MAX_SLEEP
            if self.rollout.status == RUNNING and not self._judge():
                if self._unfinished == 0:
                    self._next_stage(now)
                    continue
                node, wait = self._candidate(now)
                if node is not None:
                    gap = self._next_start - loop.time()
                    if gap <= 0:
                        await self._start(node, now)
                        self._next_start = max(self._next_start, loop.time()) + 1.0 / self._settings["rate"]
                        continue
                    delay = gap
                elif wait is not None:
                    delay = wait
            if self._deadlines:
                delay = min(delay, self._deadlines[0][0] - now)
            if delay > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except TimeoutError:
                    pass

    def wake(self) -> None:
        self._wake.set()

    # --- operators --------------------------------------------------------------------------------------------
    def pause(self, by: str, reason: str | None = None) -> None:
        if self.rollout.status != RUNNING:
            raise InvalidTransition(f"rollout {self.rollout.id} is {self.rollout.status}, not running")
        self.rollout.status, self.rollout.reason = PAUSED, reason or f"paused by {by}"
        self.rollout.record(self._hub.clock(), "paused", by, self.rollout.reason)
        self._changed()

    def resume(self, by: str) -> None:
        """Carry on; failures are judged again over the nodes that finish from now on."""
        if self.rollout.status != PAUSED:
            raise InvalidTransition(f"rollout {self.rollout.id} is {self.rollout.status}, not paused")
        self.rollout.status, self.rollout.reason = RUNNING, None
        self.rollout.baseline = {SUCCEEDED: self.counts[SUCCEEDED], FAILED: self.counts[FAILED]}
        self.rollout.record(self._hub.clock(), "resumed", by)
        self._changed()

    def cancel(self, by: str) -> None:
        if not self.rollout.active:
            raise InvalidTransition(f"rollout {self.rollout.id} is already {self.rollout.status}")
        self._end(CANCELLED, f"cancelled by {by}", by)

    # --- what the node did (called by the engine's event listeners) -------------------------------------------
    def on_command(self, node_id: str, command: dict[str, Any]) -> None:
        node = self.rollout.nodes[node_id]
        if node.command_id != command["id"] or node.status not in IN_FLIGHT:
            return
        status = command["status"]
        if status == "acknowledged" and node.status == SENDING:
            self._set(node, INSTALLING, "downloading and installing")
        elif status == "succeeded":
            self._set(node, INSTALLING, f"installed; waiting for it to come back on {self.rollout.version}")
        elif status in COMMAND_FAILED:
            self._attempt_failed(node, f"command {status}: {command.get('detail') or 'no reason given'}")

    def on_version(self, node_id: str, version: str | None) -> None:
        node = self.rollout.nodes[node_id]
        if node.status == PENDING and node.attempts and version == self.rollout.version:
            # Its attempt was given up (it timed out while the node rebooted) and the node came back on the version.
            self._set(node, SUCCEEDED, f"running {version} (reported after attempt {node.attempts} was given up)")
            return
        if node.status not in IN_FLIGHT:
            return
        if version == self.rollout.version:
            self._set(node, SUCCEEDED, f"running {version}")
        elif node.went_away:
            self._attempt_failed(node, f"came back on {version}: rolled back")

    def on_away(self, node_id: str) -> None:
        node = self.rollout.nodes[node_id]
        if node.status == INSTALLING and not node.went_away:
            node.went_away = True
            self._touch(node)

    def on_report(self, node_id: str) -> None:
        """The node reported readings: after it went away, that is its verdict."""
        node = self.rollout.nodes[node_id]
        if node.status == INSTALLING and node.went_away:
            current = self._hub.registry.get(node_id)
            self.on_version(node_id, current.firmware_version if current is not None else None)

    def on_removed(self, node_id: str) -> None:
        node = self.rollout.nodes[node_id]
        if node.status not in FINAL:
            self._release(node)
            self._set(node, FAILED, "the node was removed from the hub")

    def adopt(self, node: NodeProgress, command: Command) -> None:
        """Follow ``command`` as the node's current attempt (found pending after a restart)."""
        node.attempts += 1
        node.command_id, node.went_away, node.retry_at = command.id, False, None
        node.started_at, node.deadline = command.created, command.expires
        heapq.heappush(self._deadlines, (command.expires, node.node_id))
        status = INSTALLING if command.status == "acknowledged" else SENDING
        self._set(node, status, f"attempt {node.attempts}: sending the update (sent before the restart)")

    # --- internals ---------------------------------------------------------------------------------------------
    def _candidate(self, now: float) -> tuple[NodeProgress | None, float | None]:
        """The next node to start (a due retry first, then the next in turn), or when to look again."""
        end = self._sizes[self.rollout.stage]
        while self._retries:
            retry_at, _, node_id = self._retries[0]
            node = self.rollout.nodes[node_id]
            if node.status != PENDING or node.retry_at != retry_at:
                heapq.heappop(self._retries)  # stale: it was settled otherwise
                continue
            if retry_at <= now:
                return node, None
            break
        while self._cursor < end and self._order[self._cursor].status != PENDING:
            self._cursor += 1
        if self._cursor < end:
            return self._order[self._cursor], None
        return None, (self._retries[0][0] - now if self._retries else None)

    async def _start(self, node: NodeProgress, now: float) -> None:
        current = self._hub.registry.get(node.node_id)
        if current is None:
            self._set(node, FAILED, "the node is no longer known to the hub")
            return
        if current.firmware_version == self.rollout.version:
            if node.attempts:  # as in on_version, its report heard before the retry by no listener (a takeover)
                detail = f"running {self.rollout.version} (reported after attempt {node.attempts} was given up)"
                self._set(node, SUCCEEDED, detail)
            else:
                self._set(node, SKIPPED, f"already on {self.rollout.version}")
            return
        timeout = float(self._settings["node_timeout"])
        node.attempts += 1
        if node.attempts == 1:
            node.from_version = current.firmware_version
        node.went_away, node.retry_at, node.command_id = False, None, None
        node.started_at, node.deadline = now, now + timeout
        self._set(node, SENDING, f"attempt {node.attempts}: sending the update")
        heapq.heappush(self._deadlines, (node.deadline, node.node_id))
        try:
            url, node.link = await self._engine.download_url(
                node.node_id, self.firmware.sha256, timeout, self.rollout.id
            )
        except HubError as err:
            if node.status == SENDING:
                self._attempt_failed(node, f"no download link: {err}")
            return
        if node.status != SENDING or not self.rollout.active:  # settled or cancelled while the link was made
            return
        params = {
            "url": url,
            "version": self.rollout.version,
            "sha256": self.firmware.sha256,
            "md5": self.firmware.md5,
            "size": self.firmware.size,
        }
        try:
            command = self._hub.commands.submit(node.node_id, FIRMWARE_UPDATE, params, sender=self.sender, ttl=timeout)
        except CommandRejected as err:
            if err.code == "not_commandable":  # it pulls: its manifest now offers the new version
                self._set(node, SENDING, f"attempt {node.attempts}: released through its update manifest")
            else:
                self._attempt_failed(node, f"command refused: {err}")
            return
        node.command_id = command.id
        self._engine.watch_command(command.id, self, node.node_id)
        self._touch(node)

    def _attempt_failed(self, node: NodeProgress, reason: str) -> None:
        self._release(node)
        if node.attempts <= self._settings["retries"]:
            node.retry_at = self._hub.clock() + float(self._settings["retry_delay"])
            node.deadline = None
            heapq.heappush(self._retries, (node.retry_at, node.position or 0, node.node_id))
            self._set(node, PENDING, f"attempt {node.attempts} failed: {reason}; retrying")
        else:
            self._set(node, FAILED, f"attempt {node.attempts} failed: {reason}")

    def _release(self, node: NodeProgress) -> None:
        """Withdraw the node's command and links: a later answer or download of this attempt changes nothing."""
        if node.command_id is not None:
            self._engine.drop_command(node.command_id, self.sender)
        if node.link is not None:
            self._engine.revoke_link(node.link)
            node.link = None

    def _expire(self, now: float) -> None:
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, node_id = heapq.heappop(self._deadlines)
            node = self.rollout.nodes[node_id]
            if node.status in IN_FLIGHT and node.deadline == deadline:
                current = self._hub.registry.get(node_id)
                running = current.firmware_version if current is not None else None
                timeout = self._settings["node_timeout"]
                self._attempt_failed(node, f"no report of {self.rollout.version} within {timeout:g} s (on {running})")

    def _judge(self) -> bool:
        """Pause or abort when too many of the nodes finished since the start (or the last resume) failed."""
        succeeded = self.counts[SUCCEEDED] - self.rollout.baseline[SUCCEEDED]
        failed = self.counts[FAILED] - self.rollout.baseline[FAILED]
        judged = succeeded + failed
        ratio = self._settings["max_failure_ratio"]
        if judged < self._settings["min_nodes_before_judging"] or failed <= ratio * judged:
            return False
        reason = f"{failed} of {judged} nodes failed ({failed / judged:.0%}, more than {ratio:.0%})"
        _LOGGER.warning("Rollout %s of %s: %s", self.rollout.id, self.rollout.version, reason)
        if self._settings["on_failure"] == "abort":
            self._end(ABORTED, f"aborted: {reason}", "ota")
        else:
            self.pause("ota", f"paused: {reason}")
        return True

    def _next_stage(self, now: float) -> None:
        rollout = self.rollout
        if rollout.stage + 1 >= len(self._sizes):
            rollout.status, rollout.finished_at = COMPLETED, now
            rollout.record(now, "completed", "ota", f"{self.counts[SUCCEEDED]} succeeded, {self.counts[FAILED]} failed")
            self._engine.finished(self)
            self._changed()
            return
        start, end = self._sizes[rollout.stage], self._sizes[rollout.stage + 1]
        rollout.stage += 1
        self._unfinished += sum(1 for node in self._order[start:end] if node.status not in FINAL)
        rollout.record(now, "stage", "ota", f"stage {rollout.stage + 1} of {len(self._sizes)}: {end} nodes")
        self._changed()

    def _end(self, status: str, reason: str, by: str) -> None:
        """Cancelled or aborted: every node not finished is cancelled, its command withdrawn, its links revoked."""
        rollout = self.rollout
        for node in rollout.nodes.values():
            if node.status not in FINAL:
                self._release(node)
                self._set(node, CANCELLED, reason)
        now = self._hub.clock()
        rollout.status, rollout.reason, rollout.finished_at = status, reason, now
        rollout.record(now, status, by, reason)
        self._engine.finished(self)
        self._changed()

    def _set(self, node: NodeProgress, status: str, detail: str) -> None:
        old = node.status
        if old != status:
            self.counts[old] -= 1
            self.counts[status] += 1
            node.status = status
            if status in FINAL:
                node.finished_at, node.deadline = self._hub.clock(), None
                if node.position is not None and node.position < self._sizes[self.rollout.stage]:
                    self._unfinished -= 1
                self._engine.unwatch_node(node.node_id, self)
        node.detail = detail
        self._touch(node)

    def _touch(self, node: NodeProgress) -> None:
        node.updated_at = self._hub.clock()
        self.dirty_nodes.add(node.node_id)
        self._changed()

    def _changed(self) -> None:
        self.dirty = True
        self._engine.changed(self)
        self._wake.set()
