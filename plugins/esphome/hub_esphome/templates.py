"""The value templates the hub evaluates: a small, safe subset of Home Assistant's Jinja templates.

Home Assistant renders ``value_template`` with Jinja.  The hub does not run
Jinja on device input; it understands the forms devices actually publish to
pick a value out of a JSON state, and says clearly when it meets another:

==========================================  ==========================================
template                                    value
==========================================  ==========================================
``{{ value }}``                              the payload as it is
``{{ value_json }}``                         the payload parsed as JSON
``{{ value_json.temperature }}``             a key of the JSON object
``{{ value_json.sensor.temp }}``             nested keys (any depth)
``{{ value_json['x'] }}``, ``["x"]``         a key by subscript, also mixed with dots
``{{ value_json.values[0] }}``               a list index
==========================================  ==========================================

Whitespace inside the braces is free.  Anything else (filters such as
``| float``, arithmetic, ``if``, ``states()``…) is *unsupported*: such an
entity is registered with the attribute ``unsupported_template`` and its
state topic is not evaluated for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TEMPLATE = re.compile(r"\{\{\s*(value|value_json)((?:\s*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[^\]]*\]))*)\s*\}\}")
_STEP = re.compile(r"\s*(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(?:'([^']*)'|\"([^\"]*)\"|(-?\d+))\s*\])")

MISSING: Any = object()
"""What :meth:`ValueTemplate.extract` returns when the path is not in the payload."""


class UnsupportedTemplate(ValueError):
    """A template outside the supported subset (see the module docstring)."""


@dataclass(frozen=True, slots=True)
class ValueTemplate:
    """A parsed template: the raw payload (``json`` False) or a path into the JSON payload."""

    json: bool
    path: tuple[str | int, ...] = ()

    def extract(self, data: Any) -> Any:
        """Follow the path into already parsed JSON; ``MISSING`` when a step does not exist."""
        for step in self.path:
            if type(step) is int:
                if type(data) is not list or not -len(data) <= step < len(data):
                    return MISSING
                data = data[step]
            else:
                if type(data) is not dict:
                    return MISSING
                data = data.get(step, MISSING)
                if data is MISSING:
                    return MISSING
        return data


RAW = ValueTemplate(json=False)
"""No template, or ``{{ value }}``: the payload itself."""


def parse_template(template: object) -> ValueTemplate:
    """Parse a ``value_template``; None or empty means the raw payload.  Raises :class:`UnsupportedTemplate`."""
    if template is None or template == "":
        return RAW
    if not isinstance(template, str) or len(template) > 256:
        raise UnsupportedTemplate(str(template)[:80])
    match = _TEMPLATE.fullmatch(template.strip())
    if match is None:
        raise UnsupportedTemplate(template[:80])
    root, rest = match.groups()
    if root == "value":
        if rest.strip():
            raise UnsupportedTemplate(template[:80])
        return RAW
    path: list[str | int] = []
    position = 0
    while position < len(rest):
        step = _STEP.match(rest, position)
        if step is None:
            if rest[position:].strip():
                raise UnsupportedTemplate(template[:80])
            break
        name, single, double, index = step.groups()
        if index is not None:
            path.append(int(index))
        else:
            path.append(name if name is not None else single if single is not None else double)
        position = step.end()
    return ValueTemplate(json=True, path=tuple(path))
