"""The node YAMLs of ``firmware/esphome/``, read without ESPHome, and the ``esphome`` executable that checks them.

A *node file* is a ``*.yaml`` directly in the folder, other than ``secrets*.yaml``
(packages such as ``common/base.yaml`` live in sub-folders).  Its name and
friendly name are read from its ``substitutions`` (how the shared package
takes them) or its ``esphome:`` block; ESPHome's own tags (``!secret``,
``!include``, ``!lambda``, ``!extend``…) are read as plain values, nothing is
resolved or executed.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from hub import normalize_mac

TEMPLATES: Final = ("climate", "relay", "json_commands")
"""Example nodes ``hub esphome new`` copies."""
NAME_PATTERN: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,29}[a-z0-9])?")
"""ESPHome node names: lower-case letters, digits and '-', at most 31 characters (its hostname rules)."""
EXECUTABLE_ENV: Final = "HUB_ESPHOME"
"""Environment variable naming the ``esphome`` executable when config.yaml does not (what CI exports)."""
ESPHOME_MISSING: Final = (
    "The esphome executable was not found. ESPHome needs Python >= 3.12 in an environment of its own: "
    "run scripts/esphome-env (it creates one and prints the executable), then put that path in config.yaml "
    f"as esphome: executable:, or export {EXECUTABLE_ENV}=<that path> (or put esphome on PATH)."
)


class FirmwareError(Exception):
    """Something about firmware/esphome/ the user has to fix; the message says what."""


@dataclass(frozen=True, slots=True)
class NodeFile:
    """One node YAML: what the hub can know of a node before it ever connects."""

    path: Path
    name: str | None
    friendly_name: str | None
    area: str | None = None
    """``esphome: area:`` (or the ``area`` substitution)."""
    mac: str | None = None
    """The board's MAC when the file states it (a ``mac`` substitution, as json_commands.yaml has), canonical."""
    build_path: Path | None = None
    """Where ESPHome builds it: ``esphome: build_path:``, else ``.esphome/build/<name>`` beside the file."""


class _Loader(yaml.SafeLoader):
    """Reads ESPHome YAML: every custom tag's value is kept as plain data."""


def _plain(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_Loader.add_multi_constructor("!", _plain)


def node_files(directory: Path) -> list[NodeFile]:
    """The node files in ``directory``, sorted by file name."""
    if not directory.is_dir():
        raise FirmwareError(f"{directory}: no such folder (esphome: firmware_dir:)")
    return [read_node(path) for path in sorted(directory.glob("*.yaml")) if not path.name.startswith("secrets")]


def read_node(path: Path) -> NodeFile:
    """A node file's name and friendly name (None when it sets none, or is not readable YAML)."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, yaml.YAMLError):
        return NodeFile(path, None, None)
    if not isinstance(data, dict):
        return NodeFile(path, None, None)
    substitutions = data.get("substitutions") if isinstance(data.get("substitutions"), dict) else {}
    esphome = data.get("esphome") if isinstance(data.get("esphome"), dict) else {}
    name = _resolve(esphome.get("name", substitutions.get("name")), substitutions)
    friendly = _resolve(esphome.get("friendly_name", substitutions.get("friendly_name")), substitutions)
    area = esphome.get("area")
    if isinstance(area, dict):  # the long form, {id: …, name: …}
        area = area.get("name")
    area = _resolve(area, substitutions)
    build = _resolve(esphome.get("build_path"), substitutions)
    build_path = path.parent / build if build else path.parent / ".esphome" / "build" / name if name else None
    return NodeFile(path, name, friendly, area or None, _mac(substitutions.get("mac")), build_path)


def _mac(value: object) -> str | None:
    """A stated MAC, canonical; None for none, a placeholder of zeros, or something that is not a MAC."""
    if not isinstance(value, str) or not value.strip("0:-. "):
        return None
    try:
        return normalize_mac(value)
    except ValueError:
        return None


def _resolve(value: object, substitutions: dict[str, Any]) -> str | None:
    """``${name}`` or ``$name`` taken from the substitutions; other values as text."""
    if value is None:
        return None
    text = str(value)
    match = re.fullmatch(r"\$\{?(\w+)\}?", text)
    if match is not None:
        found = substitutions.get(match.group(1))
        return None if found is None else str(found)
    return text


def new_node(directory: Path, name: str, template: str, friendly_name: str | None = None) -> Path:
    """Write ``<directory>/<name>.yaml`` from an example node; :class:`FirmwareError` if it exists or is invalid."""
    if NAME_PATTERN.fullmatch(name) is None:
        raise FirmwareError(
            f"{name!r} is not an ESPHome node name: lower-case letters, digits and '-', at most 31 characters"
        )
    if template not in TEMPLATES:
        raise FirmwareError(f"no template {template!r}: choose one of {', '.join(TEMPLATES)}")
    source = directory / f"{template}.yaml"
    target = directory / f"{name}.yaml"
    if not source.is_file():
        raise FirmwareError(f"{source}: the template is missing")
    if target.exists():
        raise FirmwareError(f"{target} exists already")
    friendly = friendly_name or name.replace("-", " ").capitalize()
    text = source.read_text(encoding="utf-8")
    text, names = re.subn(r"(?m)^(  name: ).*$", lambda m: m.group(1) + name, text, count=1)
    text, friendlies = re.subn(
        r"(?m)^(  friendly_name: ).*$", lambda m: m.group(1) + yaml.safe_dump(friendly).split("\n")[0], text, count=1
    )
    if not (names and friendlies):
        raise FirmwareError(f"{source}: no substitutions name/friendly_name to replace")
    target.write_text(text, encoding="utf-8")
    return target


def find_executable(configured: str | None) -> Path:
    """``esphome: executable:``, else ``$HUB_ESPHOME``, else ``esphome`` on PATH; :class:`FirmwareError` if none.

    A path that is named but missing is an error of its own (not a silent fall back to PATH): the
    user meant that one."""
    for source, value in (("esphome: executable:", configured), (EXECUTABLE_ENV, os.environ.get(EXECUTABLE_ENV))):
        if value:
            path = Path(value).expanduser()
            if path.is_file() and os.access(path, os.X_OK):
                return path
            raise FirmwareError(f"{source} {value} is not an executable file. {ESPHOME_MISSING}")
    found = shutil.which("esphome")
    if found is None:
        raise FirmwareError(ESPHOME_MISSING)
    return Path(found)
