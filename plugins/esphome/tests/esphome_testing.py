"""Helpers shared by the esphome plugin's tests (a module with a unique name, unlike conftest)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from esphome_messages import Message

from hub import Event, Hub
from hub.testing import services_required

HOST_NODE = Path(__file__).with_name("data") / "host-node.yaml"
"""A node for ESPHome's host platform: compiles offline with g++ (the tests' real compile)."""


def esphome_executable() -> Path:
    """``$HUB_ESPHOME`` (else ``esphome`` on PATH); skips the test without it, fails under HUB_REQUIRE_SERVICES=1."""
    configured = os.environ.get("HUB_ESPHOME")
    found = configured or shutil.which("esphome")
    if found and Path(found).is_file() and os.access(found, os.X_OK):
        return Path(found)
    reason = (
        f"HUB_ESPHOME={configured!r} is not an executable"
        if configured
        else "the esphome executable is not available: run scripts/esphome-env and set HUB_ESPHOME to what it prints"
    )
    if services_required():
        pytest.fail(f"{reason} (HUB_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def host_firmware(directory: Path) -> Path:
    """A firmware folder holding the host node (and an empty secrets.yaml: it uses none)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(HOST_NODE, directory / HOST_NODE.name)
    (directory / "secrets.yaml").write_text("# the host node uses no secrets\n")
    return directory


class Recorder:
    """Every event the hub fires, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, event_type: str) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.event_type == event_type]


def feed(hub: Hub, *messages: Message) -> None:
    """Dispatch messages as the mqtt transport would."""
    for topic, payload, retained in messages:
        hub.messages.dispatch(topic, payload, retained)


def standin_esphome(directory: Path, gate: Path) -> Path:
    """A stand-in for the ``esphome`` command that writes what ESPHome writes, for tests that must control timing.

    ``config FILE`` says the file is valid.  ``compile FILE`` prints ESPHome's first lines, then waits until
    ``gate`` exists (so a test can look at a job while it runs), then writes a "binary" and prints the lines the
    hub reads (build path, config hash, the program's path).  The real ESPHome is tested in
    test_esphome_compile.py; this one makes the API's job lifecycle deterministic.
    """
    import sys

    script = directory / "esphome"
    script.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys, time\n"
        "command, file = sys.argv[1], sys.argv[2]\n"
        "print('INFO ESPHome 2026.10.0')\n"
        "print(f'INFO Reading configuration {file}...')\n"
        "if command == 'config':\n"
        "    print('INFO Configuration is valid!')\n"
        "    sys.exit(0)\n"
        "name = pathlib.Path(file).stem\n"
        "build = pathlib.Path.cwd() / '.esphome' / 'build' / name\n"
        "print(f'INFO Compiling app... Build path: {build}')\n"
        f"gate = pathlib.Path({str(gate)!r})\n"
        "deadline = time.monotonic() + 60\n"
        "while not gate.exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "program = build / '.pioenvs' / name / 'program'\n"
        "program.parent.mkdir(parents=True, exist_ok=True)\n"
        "program.write_bytes(b'\\x7fELF' + bytes(range(256)) * 64)\n"
        "print('[1/1] LINK program')\n"
        "print('INFO Build Info: config_hash=0x1a2b3c4d build_time_str=2026-01-01 00:00:00 +0000')\n"
        "print(f\"INFO Successfully compiled program to path '{program}'\")\n"
    )
    script.chmod(0o755)
    return script
