"""ESPHome update manifests: what ``update: platform: http_request`` polls to learn the version a node should run.

::

    {"name": "greenhouse", "version": "1.5.0",
     "builds": [{"chipFamily": "ESP32", "ota": {"path": "http://hub/api/ota/download/<token>", "md5": "…",
                                                 "summary": "greenhouse 1.5.0"}}]}

An ESPHome device cannot send a bearer token, so each manifest URL carries its own key:
``/api/ota/manifest/<node or group>.json?key=<key>``, where the key is an HMAC-SHA256 of the name under a secret
of this hub (``<data_dir>/ota-manifest.key``, created on first use, mode 0600). The key opens that one manifest
and nothing else; the manifest itself holds only a fresh single-use download link. An operator reads a name's
URL from ``GET /api/ota/manifest_url/{node_or_group}`` and writes it into the node's ESPHome config; deleting the
key file revokes every manifest URL at once. A wrong or missing key answers 404, like an unknown name.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from .catalogue import Firmware

KEY_FILE = "ota-manifest.key"


class ManifestKeys:
    """Keys of manifest URLs, derived from one secret file in the data directory."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / KEY_FILE
        self._secret: bytes | None = None

    def key(self, kind: str, name: str) -> str:
        """The key of the manifest of node or group ``name`` (``kind`` is ``node`` or ``group``)."""
        return hmac.new(self._load(), f"{kind}:{name}".encode(), hashlib.sha256).hexdigest()

    def check(self, kind: str, name: str, key: str) -> bool:
        """True when ``key`` opens that manifest (compared in constant time)."""
        return key.isascii() and hmac.compare_digest(self.key(kind, name), key)

    def _load(self) -> bytes:
        if self._secret is None:
            if not self._path.exists():
                self._create()
            self._secret = bytes.fromhex(self._path.read_text().strip())
        return self._secret

    def _create(self) -> None:
        """Write a new secret, complete before it appears (another process may be creating one too: first wins)."""
        fd, temp = tempfile.mkstemp(dir=self._path.parent, prefix=".ota-manifest-")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(32))
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(temp, self._path)
            except FileExistsError:
                pass
        finally:
            os.unlink(temp)


def chip_family(chip: str) -> str:
    """ESPHome's ``chipFamily`` spelling of a chip: ``esp32`` → ``ESP32``, ``esp32s3`` → ``ESP32-S3``."""
    return "ESP32" if chip == "esp32" else f"ESP32-{chip.removeprefix('esp32').upper()}"


def manifest_body(firmware: Firmware, download_url: str) -> dict[str, Any]:
    """The manifest advertising ``firmware``, downloadable once at ``download_url``."""
    name = firmware.project or "firmware"
    return {
        "name": name,
        "version": firmware.version,
        "builds": [
            {
                "chipFamily": chip_family(firmware.chip),
                "ota": {"path": download_url, "md5": firmware.md5, "summary": f"{name} {firmware.version}"},
            }
        ],
    }
