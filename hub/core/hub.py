"""The Hub: one object that owns the lifecycle and hands plugins the shared pieces.

A plugin sees the hub as: ``config`` (validated sections), ``bus`` (events),
``registry`` (nodes and entities), ``services`` (named operations),
``messages`` (topic subscriptions and publishing), ``commands`` (commands to nodes and their lifecycle), ``durability`` (the
commit barrier between storage and transports), ``metrics`` (Prometheus),
``data`` (shared state under typed keys, see :mod:`hub.core.keys`),
``role`` (what this process may do, see :mod:`hub.core.roles`),
``loop_lag`` (the event loop's measured lag, see :mod:`hub.core.looplag`) and
``create_task`` (background work stopped with the hub).

Lifecycle: ``starting`` → ``running`` → ``stopping`` → ``stopped``.  Start
runs every plugin's ``hub_setup`` then ``hub_start``, in dependency order;
stop runs ``hub_stop`` (intake ends) then ``hub_shutdown`` (storage flushes),
in reverse order, each phase bounded by a timeout so a stuck plugin cannot
keep the process alive forever.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from hub.core.plugins.manager import PluginManager

from .commands import CommandManager
from .config import apply_node_config
from .const import EVENT_HUB_STARTED, EVENT_HUB_STOPPING
from .durability import Durability
from .errors import HubStateError, StartupError
from .event_types import NoEventData
from .events import EventBus
from .heap import keep_fleet_frozen
from .keys import HubData
from .limits import Limits
from .looplag import LoopLag
from .messages import MessageRouter
from .metrics import Metrics
from .registry import NodeRegistry
from .roles import ROLE_ALL, Role
from .services import ServiceRegistry

_LOGGER = logging.getLogger(__name__)


GC_GEN0_THRESHOLD = 100_000
"""Young-generation threshold of a running hub (CPython's default: 700), see :func:`freeze_startup_heap`.
20,000 before: at 1,000 nodes 100,000 cost the hub 0.4-1.1 µs less a message (6 of 6 interleaved ingest runs,
14.3-15.2 against 14.9-16.1 µs), with no longer loop turn (``loop_busy_max_s`` 0.066-0.068 s against
0.058-0.069 s); a young collection over 100,000 live containers takes about 4 ms here."""


def freeze_startup_heap(hub: Hub | None = None) -> None:
    """Tune the garbage collector for the steady state; call once a long-running hub has started.

    What exists after start (modules, config, plugins, the restored fleet) lives as long as the
    process.  Left in the collected generations, every full collection walks all of it: those
    pauses (up to ~70 ms measured) were the worst latency on the ingest path.  So it is moved
    out of the collector's reach.

    Per message the ingest path allocates a few containers (the parsed JSON object, the event,
    the batch row), nearly all freed by reference counting moments later, yet at the default
    threshold of 700 they started a young collection every ~100 messages, each walking what
    survived (the open storage batch): about a tenth of the hub's CPU at 1,000 nodes (py-spy,
    ``benchmarks/profile_shares.py``).  :data:`GC_GEN0_THRESHOLD` makes those rarer; cycles
    are rare on the hot path, so little garbage waits longer.

    Not done by :meth:`Hub.async_start` itself, since a process that builds many hubs (a test
    run) would pin each one's objects forever.  Given the running ``hub``, the fleet that registers
    later is frozen as it grows (:mod:`hub.core.heap`).
    """
    gc.collect()
    gc.freeze()
    _gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)
    if hub is not None:
        hub.create_task(keep_fleet_frozen(hub.registry), "hub:gc-refreeze")


class HubState(enum.Enum):
    """Where the hub is in its life."""

    NOT_STARTED = "not_started"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Hub:
    """See the module docstring."""

    def __init__(
        self,
        config: dict[str, Any],
        plugins: PluginManager,
        *,
        role: Role = ROLE_ALL,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.plugins = plugins
        self.role = role
        self.clock = clock
        self.monotonic = monotonic
        """For measuring durations (presence's silence): unlike ``clock``, never jumps when the date is set."""
        self.state = HubState.NOT_STARTED
        self.bus = EventBus(clock=clock)
        self.registry = NodeRegistry(
            self.bus, clock=clock, limits=Limits.from_config(config.get("hub", {}).get("limits"))
        )
        self.services = ServiceRegistry()
        self.messages = MessageRouter()
        self.durability = Durability()
        self.commands = CommandManager(self.bus, self.registry, clock)
        self.metrics = Metrics()
        self.loop_lag = LoopLag(self.metrics)
        self.data = HubData()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop_requested = asyncio.Event()
        """Set by :meth:`request_stop`, at any time: a request made while starting is kept for :meth:`async_run`."""

    @property
    def data_dir(self) -> Path:
        """Where plugins keep files (the SQLite database, firmware images); created on demand."""
        path = Path(self.config["hub"]["data_dir"])
        path.mkdir(parents=True, exist_ok=True)
        return path

    # --- lifecycle -------------------------------------------------------------
    async def async_start(self, timeout: float = 60.0) -> None:
        """Set up and start every plugin; raises StartupError if that takes longer than ``timeout``."""
        if self.state is not HubState.NOT_STARTED:
            raise HubStateError(f"cannot start a hub that is {self.state.value}")
        self.state = HubState.STARTING
        try:
            async with asyncio.timeout(timeout):
                await self.plugins.call_async("hub_setup", hub=self)
                apply_node_config(self.registry, self.config.get("nodes") or {})  # storage restored the registry
                await self.plugins.call_async("hub_start", hub=self)
                if self.role.takes_input or self.role.serves_http:
                    # A process sends the commands it accepted: operators' on API instances (whose
                    # transport publishes, as RabbitMQ's does), rollouts' on workers.
                    await self.commands.async_start()
        except TimeoutError:
            raise StartupError(f"plugins did not finish starting within {timeout:.0f} s") from None
        self.state = HubState.RUNNING
        if self.role.takes_input or self.role.serves_http:  # a long-running process, not a one-off CLI command
            self.create_task(self.loop_lag.run(), "hub:loop-lag")
        started: NoEventData = {}
        self.bus.fire(EVENT_HUB_STARTED, started)
        _LOGGER.info("Hub %r running with plugins: %s", self.config["hub"]["name"], ", ".join(self.plugins.info))

    async def async_stop(self, timeout: float = 30.0) -> None:
        """Stop intake, flush storage, cancel background tasks; each phase gets up to ``timeout`` seconds."""
        if self.state in (HubState.STOPPING, HubState.STOPPED):
            return
        if self.state is HubState.NOT_STARTED:  # nothing was set up, so nothing may be torn down
            self.state = HubState.STOPPED
            return
        self.state = HubState.STOPPING
        stopping: NoEventData = {}
        self.bus.fire(EVENT_HUB_STOPPING, stopping)
        await self.commands.async_stop()
        for phase in ("hub_stop", "hub_shutdown"):
            try:
                async with asyncio.timeout(timeout):
                    await self.plugins.call_async(phase, reverse=True, hub=self)
            except TimeoutError:
                _LOGGER.error("%s did not finish within %.0f s; going on", phase, timeout)
        await self._cancel_tasks()
        await self.bus.async_close()
        self.state = HubState.STOPPED
        _LOGGER.info("Hub stopped")

    def request_stop(self) -> None:
        """Ask :meth:`async_run` to stop (what SIGINT and SIGTERM do); asked while starting, it stops once started."""
        self._stop_requested.set()

    async def async_run(self, *, after_start: Callable[[], Coroutine[Any, Any, Any]] | None = None) -> None:
        """Start, run until SIGINT/SIGTERM (or :meth:`request_stop`), then stop gracefully.

        The signal handlers are in place before the plugins start: a SIGTERM while they start (a service
        manager's stop, a test's) is a request to stop like any other, honoured once they have started,
        not the default action that kills the process mid-start with nothing flushed or closed.
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.async_start()
            if after_start is not None:
                await after_start()
            await self._stop_requested.wait()
            _LOGGER.info("Stopping: flushing storage and closing connections")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.async_stop()

    # --- background work -------------------------------------------------------------
    def create_task(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; it is cancelled when the hub stops, and a crash is logged."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("Background task %s crashed", task.get_name(), exc_info=task.exception())

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
