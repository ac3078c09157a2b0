"""Reading config.yaml: YAML with ``!secret``, ``!include`` and ``!env_var``, remembering where every value came from.

Every mapping and sequence the loader builds records the file and line of
itself and of each of its keys, so a validation error deep inside an included
file can still say ``sensors.yaml:7: mqtt -> port: expected int``.

Tags (the Home Assistant ones, with the same meaning):

* ``!secret name`` — the value of ``name`` in ``secrets.yaml`` next to the top-level config file
  (included files, wherever they are, share it).
* ``!include other.yaml`` — the parsed content of that file (relative to the including file).  It must
  lie inside the directory of the top-level config file (after resolving symlinks): a config is one
  folder that can be reviewed and backed up as a whole, and ``!include /etc/…`` or ``../../`` is an error.
* ``secrets.yaml`` readable by every user of the machine gets a warning (``chmod 600 secrets.yaml``).
* ``!env_var NAME [default]`` — an environment variable, or the default when it is unset.  The
  default is read as YAML; when it is a number or a boolean, a set variable is read as one too, so
  ``port: !env_var MQTT_PORT 1883`` is an int whether or not ``MQTT_PORT`` is set.  Otherwise the
  variable's text is taken as is (a password ``0123`` stays the string ``0123``).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

_LOGGER = logging.getLogger(__name__)

SECRETS_FILE = "secrets.yaml"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class Located:
    """Mixin for loaded containers: where the container and each of its keys or items stand."""

    file: str = "?"
    line: int = 0
    key_lines: dict[Any, int]
    secret_keys: frozenset[Any] = frozenset()
    """Keys (or indexes) whose value came from ``!secret``: error messages must not show it."""


class LocatedDict(dict, Located):
    """A mapping from YAML that knows its file and the line of each key."""


class LocatedList(list, Located):
    """A sequence from YAML that knows its file and the line of each item."""


def _location(node: yaml.Node, loader: _Loader) -> tuple[str, int]:
    return loader.file_label, node.start_mark.line + 1


class _Loader(yaml.SafeLoader):
    """SafeLoader that builds Located containers and resolves the hub's tags."""

    def __init__(self, stream: Any, path: Path, label: str, secrets: _Secrets) -> None:
        super().__init__(stream)
        self.path = path
        self.file_label = label
        self.secrets = secrets
        self.include_chain: tuple[Path, ...] = ()
        """The files being read, outermost first, so an ``!include`` cycle is an error, not a recursion."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """PyYAML's, but a scalar its own constructors cannot read is a located error, not a traceback.

        ``!!int x``, ``!!bool maybe`` and ``!!timestamp soon`` make PyYAML raise ValueError, KeyError or
        AttributeError rather than a YAMLError; the innermost node that fails is the one reported.
        """
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, KeyError, AttributeError, TypeError, OverflowError) as err:
            if isinstance(err, yaml.YAMLError):
                raise
            value = node.value if isinstance(node, yaml.ScalarNode) else "…"
            raise _located_error(self, node, f"cannot read {str(value)[:40]!r} as {node.tag}") from None

    def construct_located_mapping(self, node: yaml.MappingNode) -> LocatedDict:
        result = LocatedDict()
        result.file, result.line = _location(node, self)
        result.key_lines = {}
        local = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        self.flatten_mapping(node)  # puts the pairs of `<<: *anchor` merges first
        merged = len(node.value) - local
        from_merge: set[Any] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise _located_error(self, key_node, f"unhashable key {key!r}") from None
            if index < merged:
                from_merge.add(key)
            elif key in from_merge:
                from_merge.discard(key)  # a local key overrides a merged one: that is what merges are for
            elif key in result:
                raise _located_error(self, key_node, f"duplicate key {key!r} (first on line {result.key_lines[key]})")
            result[key] = self.construct_object(value_node, deep=True)
            result.key_lines[key] = key_node.start_mark.line + 1
        secrets = frozenset(key for key, _ in _pairs_tagged(self, node, "!secret"))
        if secrets:
            result.secret_keys = secrets
        return result

    def construct_located_sequence(self, node: yaml.SequenceNode) -> LocatedList:
        result = LocatedList(self.construct_object(child, deep=True) for child in node.value)
        result.file, result.line = _location(node, self)
        result.key_lines = {index: child.start_mark.line + 1 for index, child in enumerate(node.value)}
        secrets = frozenset(index for index, child in enumerate(node.value) if child.tag == "!secret")
        if secrets:
            result.secret_keys = secrets
        return result

    def construct_secret(self, node: yaml.Node) -> Any:
        name = self.construct_scalar(node)  # type: ignore[arg-type]
        secrets = self.secrets.values(self, node)
        if name not in secrets:
            raise _located_error(self, node, f"secret {name!r} is not defined in {SECRETS_FILE}")
        return secrets[name]

    def construct_include(self, node: yaml.Node) -> Any:
        name = self.construct_scalar(node)  # type: ignore[arg-type]
        try:
            target = (self.path.parent / str(name)).resolve()
            found = target.is_file()
        except (OSError, ValueError, RuntimeError) as err:  # a NUL byte, a name too long, a symlink loop
            raise _located_error(self, node, f"!include {str(name)[:60]!r}: not a usable file name ({err})") from None
        root = self.secrets.path.parent.resolve()  # the top-level config file's directory
        if not target.is_relative_to(root):
            raise _located_error(
                self, node, f"!include {name!r} points outside the config directory {root}; copy the file into it"
            )
        if not found:
            raise _located_error(self, node, f"included file {name!r} not found")
        if target in self.include_chain:
            cycle = " -> ".join(p.name for p in (*self.include_chain, target))
            raise _located_error(self, node, f"!include cycle: {cycle}")
        return load_yaml(
            target,
            label=_relative_label(target, self.path),
            secrets=self.secrets,
            include_chain=self.include_chain,
        )

    def construct_env_var(self, node: yaml.Node) -> Any:
        parts = str(self.construct_scalar(node)).split(None, 1)  # type: ignore[arg-type]
        if not parts:
            raise _located_error(self, node, "!env_var needs a variable name")
        value = os.environ.get(parts[0])
        try:
            default = yaml.safe_load(parts[1]) if len(parts) == 2 else None
        except yaml.YAMLError:
            raise _located_error(self, node, f"!env_var default {parts[1][:40]!r} is not a YAML value") from None
        if value is not None:
            return _typed_like(value, default)
        if len(parts) == 2:
            return default
        raise _located_error(self, node, f"environment variable {parts[0]!r} is not set and has no default")


class _Secrets:
    """secrets.yaml of one config tree: next to the top-level file, read on first use, shared by includes.

    Sharing matters: if each file looked next to itself, a ``!secret`` in ``sub/x.yaml`` would
    work or fail depending on whether the top-level file happened to use a secret first.
    """

    def __init__(self, path: Path, values: dict[str, Any] | None = None) -> None:
        self.path = path
        self._values = values

    def values(self, loader: _Loader, node: yaml.Node) -> dict[str, Any]:
        if self._values is None:
            if not self.path.is_file():
                raise _located_error(loader, node, f"!secret used but {self.path} does not exist")
            if self.path.stat().st_mode & stat.S_IROTH:
                _LOGGER.warning(
                    "%s is readable by every user of this machine; make it private: chmod 600 %s",
                    self.path,
                    self.path,
                )
            loaded = load_yaml(self.path, label=_relative_label(self.path, loader.path), secrets={})
            if not isinstance(loaded, dict):
                raise ConfigError([f"{self.path}: must be a mapping of name: value"])
            self._values = loaded
        return self._values


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _Loader.construct_located_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _Loader.construct_located_sequence)
_Loader.add_constructor("!secret", _Loader.construct_secret)
_Loader.add_constructor("!include", _Loader.construct_include)
_Loader.add_constructor("!env_var", _Loader.construct_env_var)


_BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _typed_like(value: str, default: Any) -> Any:
    """``value`` converted to the type of a bool/int/float ``default``; unchanged if not convertible.

    An unconvertible value is passed on as text so the section's schema reports it with its line.
    """
    try:
        if isinstance(default, bool):
            return _BOOLEANS.get(value.strip().lower(), value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        return value
    return value


def _pairs_tagged(loader: _Loader, node: yaml.MappingNode, tag: str) -> Iterator[tuple[Any, yaml.Node]]:
    for key_node, value_node in node.value:
        if value_node.tag == tag:
            yield loader.construct_object(key_node, deep=True), value_node


def _relative_label(target: Path, including: Path) -> str:
    try:
        return str(target.relative_to(including.parent.resolve()))
    except ValueError:
        return str(target)


def _located_error(loader: _Loader, node: yaml.Node, message: str) -> ConfigError:
    return ConfigError([f"{loader.file_label}:{node.start_mark.line + 1}: {message}"])


def load_yaml(
    path: Path,
    *,
    label: str | None = None,
    secrets: dict[str, Any] | _Secrets | None = None,
    include_chain: tuple[Path, ...] = (),
) -> Any:
    """Parse one YAML file into Located containers; ConfigError (with file:line) on any problem.

    ``secrets`` are the values ``!secret`` may use; by default, secrets.yaml next to ``path``.
    """
    label = label or path.name
    if not isinstance(secrets, _Secrets):
        secrets = _Secrets(path.parent / SECRETS_FILE, secrets)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError([f"{label}: cannot read: {err.strerror or err}"]) from err
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError([f"{label}:{line}: not UTF-8 text ({err.reason} at byte {err.start})"]) from err
    try:
        loader = _Loader(text, path, label, secrets)  # a str is checked for control characters here, whole
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        raise ConfigError([f"{label}:{line}: invalid YAML: character {err.character:#06x} is not allowed"]) from err
    loader.include_chain = (*include_chain, path.resolve())
    try:
        return loader.get_single_data()
    except RecursionError:
        raise ConfigError([f"{label}:{loader.line + 1}: invalid YAML: nested too deeply"]) from None
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
