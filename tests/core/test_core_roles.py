"""Roles: one documented set, and plugins that ask for capabilities instead of comparing role names."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
from pathlib import Path

import pytest

from hub import DATA_BROKER_URL, DATA_HTTP_URL, ROLE_ALL, ROLE_API, ROLE_CLI, ROLE_WORKER, ROLES
from hub.plugins.mqtt import DATA_MQTT
from hub.testing import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_the_roles_and_what_they_allow():
    assert dict(ROLES) == {"all": ROLE_ALL, "worker": ROLE_WORKER, "api": ROLE_API, "cli": ROLE_CLI}
    assert (ROLE_WORKER.takes_input, ROLE_WORKER.serves_http, ROLE_WORKER.runs_maintenance) == (True, False, True)
    assert (ROLE_API.takes_input, ROLE_API.serves_http, ROLE_API.runs_maintenance) == (False, True, False)
    assert (ROLE_ALL.takes_input, ROLE_ALL.serves_http, ROLE_ALL.runs_maintenance) == (True, True, True)
    assert (ROLE_CLI.takes_input, ROLE_CLI.serves_http, ROLE_CLI.runs_maintenance) == (False, False, False)
    assert str(ROLE_CLI) == "cli" and f"{ROLE_ALL}" == "all"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ROLE_ALL.takes_input = False  # type: ignore[misc]


def _task_names() -> set[str]:
    return {task.get_name() for task in asyncio.all_tasks()}


async def test_a_role_that_only_serves_http(hub_factory):
    """Every built-in follows the capabilities: ``api`` needed no plugin change."""
    hub = await hub_factory({"http": {"port": 0}}, role=ROLE_API)
    assert DATA_HTTP_URL in hub.data  # http listens
    assert DATA_BROKER_URL not in hub.data and DATA_MQTT not in hub.data  # no broker, no transport
    assert not {"presence-check", "storage-retention"} & _task_names()


async def test_a_role_that_takes_input_but_serves_no_http(hub_factory):
    hub = await hub_factory({"broker": {"port": free_port()}}, role=ROLE_WORKER)
    assert DATA_HTTP_URL not in hub.data
    assert hub.data[DATA_BROKER_URL] and DATA_MQTT in hub.data  # the embedded broker listens, the transport started
    assert {"presence-check", "storage-retention"} <= _task_names()


def _role_comparisons(path: Path) -> list[str]:
    """Comparisons that involve a role name or a ROLE_ constant: what capabilities replace."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        text = " ".join(ast.unparse(operand) for operand in operands)
        if "ROLE_" in text or any(ast.unparse(o).endswith((".role", ".role.name")) for o in operands):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_plugin_compares_role_names():
    files = [*(ROOT / "hub" / "plugins").rglob("*.py"), *ROOT.glob("plugins/*/hub_*/**/*.py")]
    assert files
    assert [found for path in files for found in _role_comparisons(path)] == []
