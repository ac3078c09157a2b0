"""Hub lifecycle: states, start/stop hooks and their timeouts, background tasks, signals."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

from hub import Manifest
from hub.core.const import EVENT_HUB_STARTED, EVENT_HUB_STOPPING
from hub.core.errors import HubStateError, StartupError
from hub.core.hub import HubState
from hub.core.plugins.hookspecs import hookimpl


class Recorder:
    MANIFEST = Manifest(name="rec")

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def hub_setup(self, hub):
        self.calls.append(f"setup:{hub.state.value}")
        hub.bus.listen(EVENT_HUB_STARTED, lambda e: self.calls.append("event:started"))
        hub.bus.listen(EVENT_HUB_STOPPING, lambda e: self.calls.append("event:stopping"))

    @hookimpl
    def hub_stop(self, hub):
        self.calls.append(f"stop:{hub.state.value}")

    @hookimpl
    def hub_shutdown(self, hub):
        self.calls.append(f"shutdown:{hub.state.value}")


async def test_lifecycle_states_and_events(hub_factory):
    recorder = Recorder()
    hub = await hub_factory(builtins=(), plugins=[(recorder, "rec")], start=False)
    assert hub.state is HubState.NOT_STARTED
    await hub.async_start()
    assert hub.state is HubState.RUNNING
    with pytest.raises(HubStateError):
        await hub.async_start()
    await hub.async_stop()
    await hub.async_stop()  # idempotent
    assert hub.state is HubState.STOPPED
    assert recorder.calls == ["setup:starting", "event:started", "event:stopping", "stop:stopping", "shutdown:stopping"]


async def test_stopping_a_hub_that_never_started_calls_no_hooks(hub_factory):
    recorder = Recorder()
    hub = await hub_factory(builtins=(), plugins=[(recorder, "rec")], start=False)
    await hub.async_stop()
    assert hub.state is HubState.STOPPED
    assert recorder.calls == []
    assert hub.plugins.failed == {}


async def test_start_timeout(hub_factory):
    class Slow:
        MANIFEST = Manifest(name="slow")

        @hookimpl
        async def hub_setup(self):
            await asyncio.sleep(10)

    hub = await hub_factory(builtins=(), plugins=[(Slow(), "slow")], start=False)
    with pytest.raises(StartupError, match="did not finish starting within"):
        await hub.async_start(timeout=0.05)
    await hub.async_stop(timeout=0.05)
    assert hub.state is HubState.STOPPED


async def test_a_stuck_stop_phase_is_abandoned_and_shutdown_still_runs(hub_factory, caplog):
    done: list[str] = []

    class Stuck:
        MANIFEST = Manifest(name="stuck")

        @hookimpl
        async def hub_stop(self):
            await asyncio.sleep(10)

        @hookimpl
        def hub_shutdown(self):
            done.append("shutdown")

    hub = await hub_factory(builtins=(), plugins=[(Stuck(), "stuck")])
    with caplog.at_level(logging.ERROR):
        await hub.async_stop(timeout=0.05)
    assert done == ["shutdown"]
    assert "hub_stop did not finish within" in caplog.text
    assert hub.state is HubState.STOPPED


async def test_background_tasks_are_cancelled_at_stop_and_crashes_logged(hub_factory, caplog):
    hub = await hub_factory(builtins=())
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def crash() -> None:
        raise RuntimeError("task bug")

    forever_task = hub.create_task(forever(), name="forever")
    with caplog.at_level(logging.ERROR):
        crash_task = hub.create_task(crash(), name="crasher")
        await asyncio.gather(crash_task, return_exceptions=True)
        await asyncio.sleep(0)
    assert "Background task crasher crashed" in caplog.text and "RuntimeError: task bug" in caplog.text
    await hub.async_stop()
    assert cancelled.is_set() and forever_task.cancelled()


async def test_run_until_request_stop(hub_factory):
    recorder = Recorder()
    hub = await hub_factory(builtins=(), plugins=[(recorder, "rec")], start=False)

    async def after_start() -> None:
        assert hub.state is HubState.RUNNING
        asyncio.get_running_loop().call_later(0.01, hub.request_stop)

    await asyncio.wait_for(hub.async_run(after_start=after_start), 5)
    assert hub.state is HubState.STOPPED
    assert "shutdown:stopping" in recorder.calls


async def test_sigterm_stops_gracefully(hub_factory):
    recorder = Recorder()
    hub = await hub_factory(builtins=(), plugins=[(recorder, "rec")], start=False)

    async def after_start() -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    await asyncio.wait_for(hub.async_run(after_start=after_start), 5)
    assert hub.state is HubState.STOPPED
    assert recorder.calls[-2:] == ["stop:stopping", "shutdown:stopping"]


class _SignalledWhileStarting(Recorder):
    """Sends its own process SIGTERM from ``hub_start``: the moment a service manager's stop can land."""

    @hookimpl
    def hub_start(self, hub):
        self.calls.append(f"start:{hub.state.value}")
        os.kill(os.getpid(), signal.SIGTERM)


async def test_sigterm_while_plugins_start_stops_gracefully_once_started(hub_factory):
    recorder = _SignalledWhileStarting()
    hub = await hub_factory(builtins=(), plugins=[(recorder, "rec")], start=False)
    unhandled: list[int] = []
    # Without the hub's handler in place the signal must not kill the test run: this one records it instead.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: unhandled.append(signum))
    try:
        await asyncio.wait_for(hub.async_run(), 5)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert unhandled == []
    assert hub.state is HubState.STOPPED
    assert recorder.calls == [
        "setup:starting",
        "start:starting",
        "event:started",
        "event:stopping",
        "stop:stopping",
        "shutdown:stopping",
    ]


async def test_data_dir_is_created_on_demand(hub_factory, tmp_path):
    hub = await hub_factory({"hub": {"data_dir": str(tmp_path / "deep" / "data")}}, builtins=())
    assert not (tmp_path / "deep").exists()
    assert hub.data_dir == tmp_path / "deep" / "data" and hub.data_dir.is_dir()
