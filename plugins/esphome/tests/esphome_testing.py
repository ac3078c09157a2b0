"""Helpers shared by the esphome plugin's tests (a module with a unique name, unlike conftest)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import pytest
from esphome_messages import Message

from hub import Event, Hub
from hub.testing import services_required, wait_until

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
    hub reads (build path, config hash, the program's path).  Its last command line is in ``argv.json`` next to
    it.  The real ESPHome is tested in
    test_esphome_compile.py; this one makes the API's job lifecycle deterministic.
    """
    import sys

    script = directory / "esphome"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys, time\n"
        f"pathlib.Path({str(directory / 'argv.json')!r}).write_text(json.dumps(sys.argv[1:]))\n"
        "command, file = [a for a in sys.argv[1:] if not a.startswith('-')][-2:]  # after any -s KEY VALUE\n"
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


async def retained_at_broker(url: str, messages: list[Message], timeout: float = 10) -> None:
    """Wait until the broker holds each retained message's payload (the last one per topic).

    A probe subscribes to the topics and collects what the broker sends: the retained copies it replays, and any of
    the messages reaching it only now (live: the broker stored a retained publish before forwarding it).  Once every
    payload is there, a client subscribing later is sure to be sent them all as retained, whatever the timing of the
    publishing client.
    """
    wanted = {topic: payload for topic, payload, retained in messages if retained}
    parts = urlsplit(url)
    seen: dict[str, bytes] = {}
    probe = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"esphome-probe-{uuid.uuid4().hex[:12]}")

    def on_message(_client: Any, _userdata: Any, message: Any) -> None:
        seen[message.topic] = message.payload

    probe.on_message = on_message
    probe.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    probe.loop_start()
    try:
        await wait_until(probe.is_connected, timeout=timeout, message="the probe's connection")
        probe.subscribe([(topic, 0) for topic in wanted])
        try:
            await wait_until(lambda: seen == wanted, timeout=timeout)
        except AssertionError:
            missing = sorted(topic for topic in wanted if seen.get(topic) != wanted[topic])
            raise AssertionError(f"the broker does not hold the retained messages of {missing}") from None
    finally:
        probe.loop_stop()
        probe.disconnect()


class Device:
    """A paho-mqtt connection playing one device, with a retained Last Will; clears what it retained."""

    def __init__(self, url: str, will: tuple[str, bytes] | None = None) -> None:
        parts = urlsplit(url)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 1883)
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"esphome-test-{uuid.uuid4().hex[:12]}")
        if will is not None:
            self.client.will_set(will[0], will[1], qos=0, retain=True)
        self.client.connect(*self._address)
        self.client.loop_start()
        self.retained: set[str] = set()
        self.received: list[tuple[str, bytes]] = []

    async def answer(self, topic: str, respond: Callable[[bytes], list[Message]]) -> None:
        """Subscribe ``topic`` (as the node subscribes its command topics) and publish ``respond(payload)`` to each.

        The answers go out from paho's thread the moment a command arrives, as a node's firmware would answer.
        """

        def on_message(_client: Any, _userdata: Any, message: Any) -> None:
            self.received.append((message.topic, message.payload))
            for state_topic, payload, retained in respond(message.payload):
                self.client.publish(state_topic, payload, qos=0, retain=retained)

        subscribed = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()
        self.client.message_callback_add(topic, on_message)
        self.client.on_subscribe = lambda *_args: loop.call_soon_threadsafe(
            lambda: subscribed.done() or subscribed.set_result(None)
        )
        self.client.subscribe(topic, qos=0)
        await asyncio.wait_for(subscribed, 10)

    async def send(self, *messages: Message) -> None:
        """Publish like ESPHome does (QoS 0, retained as given) and wait until each left the client."""
        for topic, payload, retained in messages:
            if retained:
                self.retained.add(topic)
            info = self.client.publish(topic, payload, qos=0, retain=retained)
            await asyncio.to_thread(info.wait_for_publish, 5)

    def power_loss(self) -> None:
        """Drop the connection without DISCONNECT: the broker publishes the Will."""
        sock = self.client.socket()
        self.client.loop_stop()
        if sock is not None:
            sock.close()

    def clean_up(self) -> None:
        cleaner = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"esphome-clean-{uuid.uuid4().hex[:12]}")
        cleaner.connect(*self._address)
        cleaner.loop_start()
        for topic in self.retained:
            cleaner.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        cleaner.disconnect()
        cleaner.loop_stop()
        self.client.loop_stop()
        self.client.disconnect()
