"""``HubProcess``: a real ``hub run`` a test can start, stop gracefully, kill and measure (docs/plugin-api.md)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import yaml

from hub.testing import HubProcess, free_port
from hub.testing.process import RUNNING


def _config(folder: Path, **extra: object) -> Path:
    """The built-ins on their own ports (embedded broker, API, SQLite in the folder), no installed plugin."""
    config = folder / "config.yaml"
    settings = {
        "hub": {"data_dir": str(folder / "data")},
        "broker": {"port": free_port()},
        "http": {"port": free_port()},
    }
    config.write_text(yaml.safe_dump({**settings, **extra}))
    return config


async def test_a_hub_process_runs_and_stops_gracefully(tmp_path: Path) -> None:
    hub = HubProcess(_config(tmp_path), plugins="")
    try:
        await hub.running()
        assert hub.alive()
        resident, peak = hub.memory()
        assert 0 < resident <= peak
    finally:
        code = hub.stop()
    assert code == 0, hub.log()
    assert not hub.alive()
    assert any(RUNNING in line for line in hub.lines)


def test_a_hub_process_can_be_killed(tmp_path: Path) -> None:
    hub = HubProcess(_config(tmp_path), plugins="")
    try:
        hub.wait_running()
        hub.kill()
        assert not hub.alive()
    finally:
        code = hub.stop()  # already ended: only its exit code
    assert code == -signal.SIGKILL


async def test_a_hub_that_exits_before_running_fails_the_wait_with_its_log(tmp_path: Path) -> None:
    hub = HubProcess(_config(tmp_path, storage={"no_such_option": 1}), plugins="")
    try:
        with pytest.raises(AssertionError, match="exited with") as failure:
            await hub.running()
    finally:
        hub.stop()
    assert "no_such_option" in str(failure.value)
