"""Validating config.yaml against the sections plugins declare, with errors a hobbyist can act on.

Each plugin owns one top-level section and declares its voluptuous schema
through the ``hub_config_schema`` hook.  A section left out of the file is
validated as ``{}`` so its defaults apply.  Every problem is reported, not
just the first, as ``file:line: section -> key: what is wrong``, and an
unknown key comes with the nearest known one (``did you mean 'port'?``).
A value that came from ``!secret`` is never shown: not after ``got``, and not
inside a validator's own message (every secret of the file is blanked out of
every message).
"""

from __future__ import annotations

import difflib
import logging
import math
import re
from collections.abc import Collection, Mapping
from typing import Any

import voluptuous as vol

from ..errors import ConfigError
from .loader import Located

_LOGGER = logging.getLogger(__name__)

SectionSchemas = Mapping[str, Any]
"""Section name -> voluptuous schema (a vol.Schema, or anything vol.Schema accepts)."""


def validate_config(
    raw: Mapping[str, Any],
    schemas: SectionSchemas,
    *,
    file_label: str = "config.yaml",
    failed_plugins: Collection[str] = (),
) -> dict:
    """Validate every section; return the validated config or raise ConfigError listing every problem.

    An unknown section is an error, unless plugins failed to load: then it may be one of theirs, and
    refusing to start would turn one broken plugin into a dead hub, so it is logged and skipped.
    """
    messages: list[str] = []
    validated: dict[str, Any] = {}
    for section in raw:
        if section not in schemas:
            where = _where(raw, [section], file_label)
            if failed_plugins:
                _LOGGER.warning(
                    "%s: section %r is not used: no loaded plugin owns it (failed to load: %s)",
                    where,
                    section,
                    ", ".join(sorted(failed_plugins)),
                )
                continue
            messages.append(f"{where}: unknown section {section!r}{_did_you_mean(section, schemas)}")
    for section, schema in schemas.items():
        value = raw.get(section)
        compiled = schema if isinstance(schema, vol.Schema) else vol.Schema(schema)
        try:
            validated[section] = compiled({} if value is None else value)
        except vol.MultipleInvalid as err:
            for error in err.errors:
                messages.append(_describe(raw, section, compiled, error, file_label))
        except vol.Invalid as err:
            messages.append(_describe(raw, section, compiled, err, file_label))
        except Exception as err:  # noqa: BLE001 - a validator that breaks (vol.Coerce(int) on .inf) is no traceback
            path = [section, *(_culprit(value) or [])]
            dotted = " -> ".join(str(part) for part in path)
            messages.append(f"{_where(raw, path, file_label)}: {dotted}: cannot be used ({type(err).__name__}: {err})")
    if messages:
        # A validator may quote the value it refused (a broker host given as mqtt://user:password@…): mask
        # URL passwords everywhere in the message, not only after "got".
        raise ConfigError([_redact(message) for message in _hide_secrets(messages, _secret_values(raw))])
    return validated


def _culprit(value: Any, path: tuple[Any, ...] = ()) -> list[Any] | None:
    """The key path of the first infinite or NaN number in ``value``: what ``vol.Coerce(int)`` chokes on."""
    if isinstance(value, float) and not math.isfinite(value):
        return list(path)
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _culprit(item, (*path, key))
        if found is not None:
            return found
    return None


def _describe(raw: Mapping[str, Any], section: str, schema: vol.Schema, error: vol.Invalid, file_label: str) -> str:
    path = [section, *error.path]
    where = _where(raw, path, file_label)
    dotted = " -> ".join(str(part) for part in path)
    message = error.msg
    if message == "extra keys not allowed":
        key = path[-1]
        known = _known_keys(schema, error.path[:-1])
        parent = " -> ".join(str(part) for part in path[:-1])
        return f"{where}: {parent}: unknown key {key!r}{_did_you_mean(str(key), known)}"
    if message == "required key not provided":
        parent = " -> ".join(str(part) for part in path[:-1])
        return f"{where}: {parent}: missing required key {path[-1]!r}"
    found, value = _value_at(raw, path)
    got = ""
    if found and not isinstance(value, (dict, list)):
        got = ", got the value of a !secret (not shown)" if _is_secret(raw, path) else f", got {_redact(value)!r}"
    return f"{where}: {dotted}: {message}{got}"


SECRET_PLACEHOLDER = "<secret>"
MIN_HIDDEN_LENGTH = 3
"""Shorter secrets are not blanked out of free text: hiding every "1" would garble line numbers, and a value
that short is no secret anyway.  After ``got`` they are hidden whatever their length."""


def _is_secret(raw: Mapping[str, Any], path: list[Any]) -> bool:
    """True when the value at ``path``, or a container holding it, came from ``!secret``."""
    node: Any = raw
    for part in path:
        if isinstance(node, Located) and part in node.secret_keys:
            return True
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return False


def _secret_values(node: Any, inside: bool = False) -> set[str]:
    """Every scalar that came from ``!secret`` anywhere in the loaded config, as text."""
    found: set[str] = set()
    if isinstance(node, (dict, list)):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        secret_keys = node.secret_keys if isinstance(node, Located) else frozenset()
        for key, value in items:
            found |= _secret_values(value, inside or key in secret_keys)
    elif inside and node is not None and not isinstance(node, bool):
        found.add(str(node))
    return found


def _hide_secrets(messages: list[str], secrets: set[str]) -> list[str]:
    hidden = sorted((s for s in secrets if len(s) >= MIN_HIDDEN_LENGTH), key=len, reverse=True)
    if not hidden:
        return messages
    pattern = re.compile("|".join(re.escape(secret) for secret in hidden))
    return [pattern.sub(SECRET_PLACEHOLDER, message) for message in messages]


_URL_PASSWORD = re.compile(r"(://[^/@\s]*?:)[^/\s]*@")


def _redact(value: Any) -> Any:
    """Mask the password of a URL (``mqtt://user:***@host``) so an error message never shows it."""
    return _URL_PASSWORD.sub(r"\1***@", value) if isinstance(value, str) else value


def _where(raw: Mapping[str, Any], path: list[Any], file_label: str) -> str:
    """file:line of the deepest part of ``path`` that the loaded YAML can place.

    A part the YAML does not contain (a missing required key) is placed at the key that holds
    its container (``storage:``), in that key's file, rather than at the container's first line.
    """
    file, line = getattr(raw, "file", file_label), getattr(raw, "line", 0)
    node: Any = raw
    for part in path:
        if isinstance(node, Located) and part in node.key_lines:
            file, line = node.file, node.key_lines[part]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return f"{file}:{line}" if line else file


def _value_at(raw: Mapping[str, Any], path: list[Any]) -> tuple[bool, Any]:
    node: Any = raw
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, node


def _known_keys(schema: Any, path: list[Any]) -> list[str]:
    """The keys a schema accepts at ``path`` (best effort: dicts, nested Schemas and vol.All)."""
    node = _schema_dict(schema)
    for part in path:
        if node is None:
            return []
        child = next((value for key, value in node.items() if _key_name(key) == part), None)
        node = _schema_dict(child)
    return [_key_name(key) for key in node] if node else []


def _schema_dict(schema: Any) -> dict | None:
    if isinstance(schema, vol.Schema):
        schema = schema.schema
    if isinstance(schema, dict):
        return schema
    if isinstance(schema, (vol.All, vol.Any)):
        for validator in schema.validators:
            found = _schema_dict(validator)
            if found is not None:
                return found
    return None


def _key_name(key: Any) -> Any:
    return key.schema if isinstance(key, vol.Marker) else key


def _did_you_mean(word: Any, candidates: Any) -> str:
    if not isinstance(word, str):  # a key like `1:` or `~:` (None) is no misspelled name
        return ""
    names = [str(candidate) for candidate in candidates if isinstance(candidate, str)]
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return f", did you mean {close[0]!r}?" if close else ""
