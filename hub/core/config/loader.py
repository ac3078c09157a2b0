"""Reading config.yaml: YAML with ``!secret``, ``!include`` and ``!env_var``, remembering where every value came from.

Every mapping and sequence the loader builds records the file and line of
itself and of each of its keys, so a validation error deep inside an included
file can still say ``sensors.yaml:7: mqtt -> port: expected int``.

Tags (the Home Assistant ones, with the same meaning):

* ``!secret name`` — the value of ``name`` in ``secrets.yaml`` next to the file being read.
* ``!include other.yaml`` — the parsed content of that file (relative to the including file).
* ``!env_var NAME [default]`` — an environment variable, or the default when it is unset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

SECRETS_FILE = "secrets.yaml"


class Located:
    """Mixin for loaded containers: where the container and each of its keys or items stand."""

    file: str = "?"
    line: int = 0
    key_lines: dict[Any, int]


class LocatedDict(dict, Located):
    """A mapping from YAML that knows its file and the line of each key."""


class LocatedList(list, Located):
    """A sequence from YAML that knows its file and the line of each item."""


def _location(node: yaml.Node, loader: _Loader) -> tuple[str, int]:
    return loader.file_label, node.start_mark.line + 1


class _Loader(yaml.SafeLoader):
    """SafeLoader that builds Located containers and resolves the hub's tags."""

    def __init__(self, stream: Any, path: Path, label: str, secrets: dict[str, Any] | None) -> None:
        super().__init__(stream)
        self.path = path
        self.file_label = label
        self.secrets_cache = secrets

    def construct_located_mapping(self, node: yaml.MappingNode) -> LocatedDict:
        result = LocatedDict()
        result.file, result.line = _location(node, self)
        result.key_lines = {}
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise _located_error(self, key_node, f"unhashable key {key!r}") from None
            if key in result:
                raise _located_error(
                    self, key_node, f"duplicate key {key!r} (first on line {result.key_lines[key]})"
                )
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = key_node.start_mark.line + 1
        return result

    def construct_located_sequence(self, node: yaml.SequenceNode) -> LocatedList:
        result = LocatedList(self.construct_object(child, deep=True) for child in node.value)
        result.file, result.line = _location(node, self)
        result.key_lines = {index: child.start_mark.line + 1 for index, child in enumerate(node.value)}
        return result

    def construct_secret(self, node: yaml.Node) -> Any:
        name = self.construct_scalar(node)  # type: ignore[arg-type]
        secrets = self._secrets(node)
        if name not in secrets:
            raise _located_error(self, node, f"secret {name!r} is not defined in {SECRETS_FILE}")
        return secrets[name]

    def construct_include(self, node: yaml.Node) -> Any:
        name = self.construct_scalar(node)  # type: ignore[arg-type]
        target = (self.path.parent / str(name)).resolve()
        if not target.is_file():
            raise _located_error(self, node, f"included file {name!r} not found")
        return load_yaml(target, label=_relative_label(target, self.path), secrets=self.secrets_cache)

    def construct_env_var(self, node: yaml.Node) -> Any:
        parts = str(self.construct_scalar(node)).split(None, 1)  # type: ignore[arg-type]
        if not parts:
            raise _located_error(self, node, "!env_var needs a variable name")
        value = os.environ.get(parts[0])
        if value is not None:
            return value
        if len(parts) == 2:
            return yaml.safe_load(parts[1])
        raise _located_error(self, node, f"environment variable {parts[0]!r} is not set and has no default")

    def _secrets(self, node: yaml.Node) -> dict[str, Any]:
        if self.secrets_cache is None:
            secrets_path = self.path.parent / SECRETS_FILE
            if not secrets_path.is_file():
                raise _located_error(self, node, f"!secret used but {secrets_path} does not exist")
            loaded = load_yaml(secrets_path, label=_relative_label(secrets_path, self.path), secrets={})
            if not isinstance(loaded, dict):
                raise ConfigError([f"{secrets_path}: must be a mapping of name: value"])
            self.secrets_cache = loaded
        return self.secrets_cache


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_located_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _Loader.construct_located_sequence)
_Loader.add_constructor("!secret", _Loader.construct_secret)
_Loader.add_constructor("!include", _Loader.construct_include)
_Loader.add_constructor("!env_var", _Loader.construct_env_var)


def _relative_label(target: Path, including: Path) -> str:
    try:
        return str(target.relative_to(including.parent.resolve()))
    except ValueError:
        return str(target)


def _located_error(loader: _Loader, node: yaml.Node, message: str) -> ConfigError:
    return ConfigError([f"{loader.file_label}:{node.start_mark.line + 1}: {message}"])


def load_yaml(path: Path, *, label: str | None = None, secrets: dict[str, Any] | None = None) -> Any:
    """Parse one YAML file into Located containers; ConfigError (with file:line) on any problem."""
    label = label or path.name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError([f"{label}: cannot read: {err.strerror or err}"]) from err
    except UnicodeDecodeError as err:
        raise ConfigError([f"{label}: not UTF-8 text ({err.reason})"]) from err
    loader = _Loader(text, path, label, secrets)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{label}:{mark.line + 1}" if mark else label
        raise ConfigError([f"{where}: invalid YAML: {err.problem or err.context}"]) from err
    except yaml.YAMLError as err:
        raise ConfigError([f"{label}: invalid YAML: {err}"]) from err
    finally:
        loader.dispose()


def load_config_file(path: Path) -> dict[str, Any]:
    """Load config.yaml; an empty file is an empty config, anything but a mapping is an error."""
    data = load_yaml(path)
    if data is None:
        empty = LocatedDict()
        empty.file, empty.line, empty.key_lines = path.name, 1, {}
        return empty
    if not isinstance(data, dict):
        raise ConfigError([f"{path.name}:1: the top level must be a mapping of sections (mqtt:, storage:, …)"])
    return data
