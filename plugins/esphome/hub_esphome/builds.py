"""What the hub remembers of validating and compiling a node: small JSON records beside ESPHome's own files.

* **Compiled**: ``<build path>/hub-build.json``, next to ESPHome's
  ``build_info.json`` in the node's build folder (``.esphome/build/<name>/``
  by default): the binary's path, size and SHA-256, the firmware version the
  node will report (the ``project:`` version when the YAML names one, else the
  ESPHome version), ESPHome's config hash, when and by whom, and a digest of the
  YAML it was built from.  ESPHome cleans that folder when its version or the
  core config changes, which takes the record with the binary it describes.
* **Validated**: ``.esphome/hub/<name>.validated.json`` in the firmware folder:
  whether ``esphome config`` passed, when, and the same source digest.

The *source digest* covers the node file, every YAML in the folder's
sub-folders (the shared packages) and ``secrets.yaml``: a record whose digest
differs from today's is *outdated* (the YAML changed since).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

BUILD_RECORD: Final = "hub-build.json"
STATE_DIR: Final = Path(".esphome") / "hub"

_BUILD_PATH = re.compile(r"Compiling app\.\.\. Build path: (.+)$")
_PROGRAM = re.compile(r"Successfully compiled program to path '(.+)'")
_CREATED_OTA = re.compile(r"Created: (.+\.ota\.bin)\s*$")
_CONFIG_HASH = re.compile(r"Build Info: config_hash=(0x[0-9a-fA-F]+)")
_VERSION = re.compile(r"^INFO ESPHome (\S+)$")
_PROJECT_VERSION = re.compile(r'^#define ESPHOME_PROJECT_VERSION "((?:[^"\\]|\\.)*)"$', re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Build:
    """One compiled binary, as ``hub-build.json`` records it."""

    name: str
    file: str
    binary: str
    """Absolute path of the image a node installs (ESP32: ``firmware.ota.bin``; host: ``program``)."""
    size: int
    sha256: str
    version: str | None
    """What the node will report as its firmware version: its project version, else the ESPHome version."""
    esphome_version: str | None
    config_hash: str | None
    source_digest: str
    compiled_at: float
    compiled_by: str | None
    factory_binary: str | None = None
    """ESP32: the image with bootloader and partition table, for the first flash over USB."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class CompileOutput:
    """What the hub reads from ``esphome compile``'s output while it runs."""

    build_path: Path | None = None
    binary: Path | None = None
    config_hash: str | None = None
    esphome_version: str | None = None

    def feed(self, line: str) -> None:
        """Take one output line (cheap: one regex or two per line)."""
        if (match := _BUILD_PATH.search(line)) is not None:
            self.build_path = Path(match.group(1).strip())
        elif (match := _PROGRAM.search(line)) is not None or (match := _CREATED_OTA.search(line)) is not None:
            self.binary = Path(match.group(1).strip())
        elif (match := _CONFIG_HASH.search(line)) is not None:
            self.config_hash = match.group(1).lower()
        elif self.esphome_version is None and (match := _VERSION.match(line)) is not None:
            self.esphome_version = match.group(1)


def find_binary(output: CompileOutput, build_path: Path, name: str) -> Path | None:
    """The image a successful compile produced: what ESPHome said, else where its toolchains put it."""
    if output.binary is not None and output.binary.is_file():
        return output.binary
    for candidate in (
        build_path / "build" / "firmware.ota.bin",  # ESP-IDF toolchain
        build_path / ".pioenvs" / name / "firmware.ota.bin",  # PlatformIO
        build_path / ".pioenvs" / name / "firmware.bin",
        build_path / ".pioenvs" / name / "program",  # host
    ):
        if candidate.is_file():
            return candidate
    return None


def built_project_version(build_path: Path) -> str | None:
    """``esphome: project: version:`` as the build compiled it in (ESPHome's generated ``defines.h``)."""
    try:
        defines = (build_path / "src" / "esphome" / "core" / "defines.h").read_text(encoding="utf-8")
    except OSError:
        return None
    match = _PROJECT_VERSION.search(defines)
    return match.group(1) if match else None


def find_factory_binary(binary: Path) -> Path | None:
    """The full-flash image next to an ESP32 OTA image, if ESPHome made one."""
    candidate = binary.with_name("firmware.factory.bin")
    return candidate if candidate.is_file() and candidate != binary else None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 16):
            digest.update(chunk)
    return digest.hexdigest()


class SourceDigests:
    """Digests of node sources, cached by the files' size and modification time (cheap for 500 nodes)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[tuple[Any, ...], str] = {}

    def shared_files(self) -> list[Path]:
        """Every YAML in the sub-folders (the shared packages), and secrets.yaml.

        Hidden folders are not searched: ``.esphome/`` holds ESPHome's build folders (thousands of files for a
        big fleet, walked on every request of the provisioning page otherwise) and no package of the nodes.
        """
        try:
            entries = list(self.directory.iterdir())
        except FileNotFoundError:  # no firmware folder (yet): no shared files, not a 500 on the provisioning page
            return []
        folders = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
        files = sorted(p for folder in folders for p in folder.rglob("*.yaml"))
        secrets = self.directory / "secrets.yaml"
        return [*files, secrets] if secrets.is_file() else files

    def digest(self, node_file: Path, shared: Iterable[Path] | None = None) -> str:
        files = [node_file, *(self.shared_files() if shared is None else shared)]
        key = tuple((str(p), *_stat(p)) for p in files)
        cached = self._cache.get(key)
        if cached is None:
            digest = hashlib.sha256()
            for path in files:
                digest.update(str(path.relative_to(self.directory)).encode() + b"\0")
                digest.update(path.read_bytes() if path.is_file() else b"")
                digest.update(b"\0")
            cached = self._cache[key] = digest.hexdigest()
            if len(self._cache) > 10_000:
                self._cache.clear()
        return cached


def _stat(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


# --- the records --------------------------------------------------------------------------------


def write_build(build_path: Path, build: Build) -> Path:
    """Write ``hub-build.json`` (atomically: a reader never sees half of it)."""
    return _write_json(build_path / BUILD_RECORD, build.as_dict())


def read_build(build_path: Path) -> Build | None:
    """The record of the last compile, or None when there is none (or it is damaged, or its binary is gone)."""
    data = _read_json(build_path / BUILD_RECORD)
    if data is None:
        return None
    try:
        build = Build(**data)
    except TypeError:
        return None
    return build if Path(build.binary).is_file() else None


def write_validation(directory: Path, name: str, *, ok: bool, source_digest: str, by: str | None) -> dict[str, Any]:
    record = {"ok": ok, "at": time.time(), "by": by, "source_digest": source_digest}
    _write_json(directory / STATE_DIR / f"{name}.validated.json", record)
    return record


def read_validation(directory: Path, name: str) -> dict[str, Any] | None:
    return _read_json(directory / STATE_DIR / f"{name}.validated.json")


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
