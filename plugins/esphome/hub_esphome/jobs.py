"""Validate and compile jobs started through the API: one task each, their output kept for whoever follows it.

A job runs :class:`~.provision.Provisioner` in the background; its lines are
appended to the job as ESPHome writes them, and any number of readers follow
them (:meth:`Job.follow`: everything so far, then each new line until the job
ends) — that is what ``GET /api/esphome/jobs/{id}/log`` streams.  A change of
status fires ``esphome_job_updated`` (the job without its lines) on the bus,
so a page sees jobs that another tab or user started.

At most :data:`MAX_RUNNING` jobs run at once (a compile keeps a core busy);
the others wait, ``queued``.  One node has at most one job waiting or running.
Finished jobs are kept (the newest :data:`KEEP_FINISHED`) so a page opened
later can still read the log; a log keeps its first :data:`MAX_LINES` lines and
counts the rest (a compile writes a few hundred).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypedDict

from hub import EventType, current_actor

from .firmware import FirmwareError, NodeFile
from .provision import Outcome, Provisioner

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)

MAX_RUNNING: Final = 1
KEEP_FINISHED: Final = 50
MAX_LINES: Final = 20_000
KINDS: Final = ("validate", "compile")
ACTIVE: Final = frozenset({"queued", "running"})


class EsphomeJobUpdatedData(TypedDict):
    """``esphome_job_updated``: a job was queued, started or finished."""

    job: dict[str, Any]


EVENT_ESPHOME_JOB_UPDATED: Final[EventType[EsphomeJobUpdatedData]] = EventType("esphome_job_updated")


class JobBusy(Exception):
    """The node already has a job waiting or running."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"{job.node} already has a {job.kind} job {job.status} ({job.id})")
        self.job = job


@dataclass(slots=True)
class Job:
    """One validate or compile of one node."""

    id: str
    kind: str
    node: str
    file: str
    by: str | None
    created_at: float
    status: str = "queued"
    started_at: float | None = None
    finished_at: float | None = None
    returncode: int | None = None
    problem: str | None = None
    build: dict[str, Any] | None = None
    lines: list[str] = field(default_factory=list)
    dropped: int = 0
    """Lines not kept past :data:`MAX_LINES`."""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "node": self.node,
            "file": self.file,
            "by": self.by,
            "status": self.status,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "returncode": self.returncode,
            "problem": self.problem,
            "build": self.build,
            "lines": len(self.lines) + self.dropped,
        }

    def append(self, line: str) -> None:
        if len(self.lines) < MAX_LINES:
            self.lines.append(line)
            self._wake()
        else:
            self.dropped += 1

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self) -> AsyncIterator[list[str]]:
        """The lines so far, then each batch of new ones, until the job has ended."""
        sent = 0
        while True:
            changed = self._changed
            if sent < len(self.lines):
                batch = self.lines[sent:]
                sent = len(self.lines)
                yield batch
                continue
            if self.status not in ACTIVE:
                return
            await changed.wait()


class JobManager:
    """The jobs of one hub."""

    def __init__(self, hub: Hub, provisioner: Provisioner, on_finished: Any = None) -> None:
        self._hub = hub
        self._provisioner = provisioner
        self._on_finished = on_finished
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._slots = asyncio.Semaphore(MAX_RUNNING)

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def jobs(self, node: str | None = None) -> list[Job]:
        """Newest first."""
        return [job for job in reversed(self._jobs.values()) if node is None or job.node == node]

    def active(self, node: str) -> Job | None:
        return next((job for job in self._jobs.values() if job.node == node and job.status in ACTIVE), None)

    def start(self, kind: str, node: NodeFile) -> Job:
        """Queue a job (JobBusy if the node has one; FirmwareError if ESPHome or the secrets are missing)."""
        assert kind in KINDS and node.name is not None
        busy = self.active(node.name)
        if busy is not None:
            raise JobBusy(busy)
        self._provisioner.executable()  # fail now, with the remedy, rather than in a job
        self._provisioner.check_secrets()
        job = Job(
            id=secrets.token_hex(8),
            kind=kind,
            node=node.name,
            file=node.path.name,
            by=current_actor(),
            created_at=self._hub.clock(),
        )
        self._jobs[job.id] = job
        self._prune()
        job.task = self._hub.create_task(self._run(job, node), name=f"esphome-{kind}-{node.name}")
        self._fire(job)
        return job

    async def _run(self, job: Job, node: NodeFile) -> None:
        outcome: Outcome | None = None
        try:
            async with self._slots:
                job.status, job.started_at = "running", self._hub.clock()
                self._fire(job)
                if job.kind == "validate":
                    outcome = await self._provisioner.validate(node, job.append, by=job.by)
                else:
                    outcome = await self._provisioner.compile(node, job.append, by=job.by)
        except FirmwareError as err:
            job.problem = str(err)
        except asyncio.CancelledError:
            job.problem = "stopped: the hub is shutting down"
            raise
        except Exception as err:  # noqa: BLE001 - a job's failure is reported on the job, never lost
            _LOGGER.exception("esphome %s of %s failed", job.kind, job.node)
            job.problem = f"internal error: {err}"
        finally:
            if outcome is not None:
                job.returncode, job.problem = outcome.returncode, outcome.problem
                job.build = outcome.build.as_dict() if outcome.build else None
            job.status = "succeeded" if outcome is not None and outcome.ok else "failed"
            if job.status == "failed" and job.problem is None:
                job.problem = (
                    f"esphome {'config' if job.kind == 'validate' else 'compile'} exited with {job.returncode}"
                )
            job.finished_at = self._hub.clock()
            job._wake()
            self._fire(job)
            if self._on_finished is not None:
                self._on_finished(job)

    def _fire(self, job: Job) -> None:
        data: EsphomeJobUpdatedData = {"job": job.as_dict()}
        self._hub.bus.fire(EVENT_ESPHOME_JOB_UPDATED, data)

    def _prune(self) -> None:
        finished = [job_id for job_id, job in self._jobs.items() if job.status not in ACTIVE]
        for job_id in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job_id]

    async def stop(self) -> None:
        """Stop every job (their ESPHome processes are killed)."""
        tasks = [job.task for job in self._jobs.values() if job.task is not None and not job.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
