"""State payloads as devices publish them → the values the registry keeps.

ESPHome publishes one value per topic: a sensor as text with its accuracy
(``21.4``, ``1013``), ``nan`` (or ``None`` with ``publish_nan_as_none``) when
a reading failed; binary sensors and switches ``ON``/``OFF``; text sensors
their text; update entities a JSON object.  Other publishers (zigbee2mqtt,
Tasmota) put several values in one JSON object and pick each with a
``value_template`` (:mod:`.templates`).

Per platform:

=========================================  ===================================================
platform                                    value
=========================================  ===================================================
``sensor``, ``number``                      a float; ``None``/``nan``/``unknown``/``unavailable``
                                            and non-finite numbers → None (unknown); another text
                                            is kept as text for a ``sensor`` (enum and timestamp
                                            sensors), rejected for a ``number``
``binary_sensor``, ``switch``, ``fan``,     True for ``payload_on``/``state_on`` (default ``ON``),
``siren``, ``light``                        False for ``payload_off`` (``OFF``), None for the
                                            unknown words; a JSON-schema light's ``state`` key
``update``                                  the JSON object's version fields
                                            (``installed_version``, ``latest_version``, ``title``,
                                            ``release_summary``, ``release_url``, ``in_progress``,
                                            ``update_percentage``)
anything else (``text_sensor``, ``select``,  the text, at most 255 characters
``lock``, ``cover``, ``event``, …)
``button``, ``scene``, ``device_automation`` no state
=========================================  ===================================================

A converter returns :data:`INVALID` for a value its platform cannot hold; the
caller counts it as a ``bad_state`` rejection.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from .contract import MAX_TEXT
from .discovery import EntityConfig

INVALID: Any = object()
"""A payload the entity's platform cannot hold."""

UNKNOWN_WORDS: Final = frozenset({"none", "nan", "-nan", "unknown", "unavailable", "null", ""})

STATELESS_PLATFORMS: Final = frozenset({"button", "scene", "device_automation", "tag", "notify"})
_NUMERIC: Final = frozenset({"sensor", "number"})
_BINARY: Final = frozenset({"binary_sensor", "switch", "fan", "siren", "light"})
UPDATE_FIELDS: Final = frozenset(
    {
        "installed_version",
        "latest_version",
        "title",
        "release_summary",
        "release_url",
        "in_progress",
        "update_percentage",
    }
)

Converter = Callable[[Any], Any]
"""converter(value) -> state: ``value`` is the payload text, or what a template picked out of the JSON."""


def converter_for(config: EntityConfig) -> Converter:
    """The function turning this entity's payload (or templated value) into its state."""
    platform = config.platform
    if platform in _NUMERIC:
        return _number if platform == "number" else _sensor
    if platform in _BINARY:
        on, off = config.payload_on, config.payload_off
        if platform == "light" and config.extra.get("schema") == "json" and config.value_template is None:
            return lambda value: _json_light(value, on, off)
        return lambda value: _binary(value, on, off)
    if platform == "update":
        return _update
    return _text


def wants_json(config: EntityConfig) -> bool:
    """Whether the payload is JSON for this entity even without a template (update entities, JSON-schema lights)."""
    return config.platform == "update" or (config.platform == "light" and config.extra.get("schema") == "json")


def _unknown(value: Any) -> bool:
    return value is None or (type(value) is str and value.strip().lower() in UNKNOWN_WORDS)


def _float(value: Any) -> Any:
    """A finite float, None for the unknown words and non-finite numbers, INVALID for other values."""
    kind = type(value)
    if kind is float or kind is int:
        return float(value) if math.isfinite(value) else None
    if kind is str:
        try:
            number = float(value)
        except ValueError:
            return None if _unknown(value) else INVALID
        return number if math.isfinite(number) else None
    return None if value is None else INVALID


def _sensor(value: Any) -> Any:
    number = _float(value)
    if number is INVALID and type(value) is str:
        return value[:MAX_TEXT]  # an enum or timestamp sensor
    return number


def _number(value: Any) -> Any:
    return _float(value)


def _same(value: Any, expected: Any) -> bool:
    """Payload comparison as configs mean it: ``true`` matches True (zigbee2mqtt), ``1`` never matches True."""
    if type(value) is bool or type(expected) is bool:
        return str(value).lower() == str(expected).lower()
    return value == expected or str(value) == str(expected)


def _binary(value: Any, on: Any, off: Any) -> Any:
    if type(value) is str:
        value = value.strip()
    if _same(value, on):
        return True
    if _same(value, off):
        return False
    return None if _unknown(value) else INVALID


def _json_light(value: Any, on: Any, off: Any) -> Any:
    if type(value) is not dict:
        return INVALID
    return _binary(value.get("state"), on, off)


def _update(value: Any) -> Any:
    if type(value) is not dict:
        return INVALID
    state = {}
    for key in UPDATE_FIELDS:
        item = value.get(key)
        if type(item) is str:
            state[key] = item[:MAX_TEXT]
        elif (type(item) in (bool, int, float) or item is None) and key in value:
            state[key] = item
    return state


def _text(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is str:
        return value[:MAX_TEXT]
    if type(value) in (bool, int, float):
        return value if type(value) is not float or math.isfinite(value) else None
    return INVALID
