"""Native API encryption (``api: encryption: key:``) on the hub's side, as far as it can be real offline.

A node with encryption cannot be compiled here: ESPHome then needs the noise-c
library from the PlatformIO registry (``esphome/library/noise-c``), which it
cannot reach offline (see plugins/esphome/README.md, "Encryption").  So:

* against the **real host node** (plaintext), a hub whose config.yaml gives the
  node a key (through ``!secret``) must not connect, and must log plainly why;
* against a **stand-in encrypted node** (a TCP server doing the responder's side
  of ESPHome's Noise handshake, ``Noise_NNpsk0_25519_ChaChaPoly_SHA256`` with
  the prologue ``NoiseAPIInit\\0\\0``, with the ``noise`` library aioesphomeapi
  itself uses): a hub without a key is told the node requires encryption, a
  hub with another key is refused (``Handshake MAC failure``, what ESPHome
  sends), and a hub with the node's key completes the handshake, which proves
  the key from config.yaml is the one aioesphomeapi uses.  The stand-in stops
  after the handshake: what follows is the API the real-node tests cover.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import hub_esphome.plugin
import pytest
from aioesphomeapi._frame_helper.noise_encryption import NOISE_PROTOCOL_NAME, decode_noise_psk
from cryptography.exceptions import InvalidTag
from native_node import NODE_MAC, HostNode, build, esphome_executable, require_network_namespace
from noise.connection import NoiseConnection

from hub import Hub
from hub.core.config.loader import load_config_file
from hub.testing import wait_until

KEY = "pOPgbWz7ZvmwVBKXBPhX7QGgNjqPsx8AU3A28MW1sJ8="
OTHER_KEY = "ZmlyZXdhbGwtb2YtdGhlLWh1Yi1pcy1ub3QtaGVyZS0="
CONFIG_LOGGER = "hub_esphome.native.connection"


def _frame(payload: bytes) -> bytes:
    """One frame of ESPHome's Noise transport: 0x01, the length (big-endian, 2 bytes), the payload."""
    return bytes((0x01, len(payload) >> 8, len(payload) & 0xFF)) + payload


class EncryptedNode:
    """The responder's side of the handshake of an ESPHome node whose ``api: encryption: key:`` is ``key``."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.seen: list[str] = []  # per connection: plaintext, bad key, handshake ok
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            self.seen.append(await self._handshake(reader, writer))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.seen.append("dropped")
        finally:
            writer.close()

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
        header = await reader.readexactly(3)
        if header[0] != 0x01:  # a plaintext client: ESPHome's noise frame helper rejects the indicator
            writer.write(_frame(b"\x01Bad indicator byte"))
            return "plaintext"
        await reader.readexactly((header[1] << 8) | header[2])  # the client's hello (empty)
        header = await reader.readexactly(3)
        message = await reader.readexactly((header[1] << 8) | header[2])
        writer.write(_frame(b"\x01hub-native-test\x00024e41544956\x00"))  # protocol 1, name, MAC
        proto = NoiseConnection.from_name(NOISE_PROTOCOL_NAME)
        proto.set_as_responder()
        proto.set_psks(decode_noise_psk(self.key))
        proto.set_prologue(b"NoiseAPIInit\x00\x00")
        proto.start_handshake()
        try:
            proto.read_message(message[1:])
        except InvalidTag:
            writer.write(_frame(b"\x01Handshake MAC failure"))
            return "bad key"
        writer.write(_frame(b"\x00" + proto.write_message()))
        return "handshake ok"


@pytest.fixture
async def encrypted_node() -> AsyncIterator[EncryptedNode]:
    node = EncryptedNode(KEY)
    await node.start()
    yield node
    await node.close()


async def _hub_from_files(hub_factory: Any, tmp_path: Path, node: dict[str, Any], secret: str | None) -> Hub:
    """A hub whose config.yaml lists ``node`` (``encryption_key: !secret node_key`` when ``secret`` is given)."""
    lines = [
        "storage:",
        f"  db_url: sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        "esphome:",
        f"  firmware_dir: {tmp_path / 'firmware'}",  # no node files: the registry holds only what connects
        "  native_api:",
        "    nodes:",
        f"      - host: {node['host']}",
        f"        port: {node['port']}",
    ]
    if secret is not None:
        lines.append("        encryption_key: !secret node_key")
        (tmp_path / "secrets.yaml").write_text(f"node_key: {secret}\n")
        (tmp_path / "secrets.yaml").chmod(0o600)
    (tmp_path / "firmware").mkdir()
    (tmp_path / "config.yaml").write_text("\n".join(lines) + "\n")
    raw = load_config_file(tmp_path / "config.yaml")
    return await hub_factory(
        raw, builtins=("hub.plugins.storage", "hub.plugins.presence"), plugins=[(hub_esphome.plugin, "esphome")]
    )


def _config_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == CONFIG_LOGGER and r.levelno >= logging.ERROR]


async def test_a_hub_without_the_key_is_told_the_node_requires_encryption(
    encrypted_node: EncryptedNode, hub_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub = await _hub_from_files(hub_factory, tmp_path, {"host": "127.0.0.1", "port": encrypted_node.port}, None)
    errors = await wait_until(lambda: _config_errors(caplog), message="the config error logged")
    assert "Connection requires encryption" in errors[0] and "(check esphome: native_api:)" in errors[0]
    assert encrypted_node.seen[0] == "plaintext" and len(hub.registry) == 0


async def test_a_hub_with_another_key_is_refused_with_a_clear_error(
    encrypted_node: EncryptedNode, hub_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = {"host": "127.0.0.1", "port": encrypted_node.port}
    hub = await _hub_from_files(hub_factory, tmp_path, node, OTHER_KEY)
    errors = await wait_until(lambda: _config_errors(caplog), message="the config error logged")
    assert "Invalid encryption key" in errors[0] and "(check esphome: native_api:)" in errors[0]
    assert encrypted_node.seen[0] == "bad key" and len(hub.registry) == 0
    assert all(OTHER_KEY not in r.getMessage() for r in caplog.records)  # the key itself is never logged


async def test_the_key_from_config_yaml_is_the_one_the_handshake_uses(
    encrypted_node: EncryptedNode, hub_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await _hub_from_files(hub_factory, tmp_path, {"host": "127.0.0.1", "port": encrypted_node.port}, KEY)
    await wait_until(lambda: "handshake ok" in encrypted_node.seen, message="a completed Noise handshake")
    assert "bad key" not in encrypted_node.seen and "plaintext" not in encrypted_node.seen
    assert _config_errors(caplog) == []
    assert all(KEY not in r.getMessage() for r in caplog.records)


@pytest.mark.esphome
async def test_a_key_for_the_real_plaintext_node_is_a_clear_error(
    hub_factory: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_network_namespace()
    node = HostNode(build(esphome_executable()), tmp_path / "node")
    await node.start()
    try:
        hub = await _hub_from_files(hub_factory, tmp_path, {"host": "127.0.0.1", "port": node.port}, KEY)
        errors = await wait_until(lambda: _config_errors(caplog), timeout=20, message="the config error logged")
        assert "The device is using plaintext protocol" in errors[0] and "(check esphome: native_api:)" in errors[0]
        assert hub.registry.get(NODE_MAC) is None  # never connected, so never registered
    finally:
        await node.close()
