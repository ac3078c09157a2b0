"""``hub plugin new NAME``: write a new plugin distribution that installs and passes its own tests unchanged.

The files come from ``templates/`` (package data, so this works from an installed
wheel): each ``*.tmpl`` is a :class:`string.Template` rendered with the names
below, and a ``PACKAGE`` folder becomes the import package.  For ``NAME`` =
``my-sensor`` (or ``my_sensor``, the same plugin):

* the plugin name ``my_sensor``: entry point, manifest, config section, service
  domain and topic prefix, so it must be an identifier (it prefixes metric names);
* the distribution ``hub-my-sensor`` (folder, pyproject name) and the package
  ``hub_my_sensor``, the way the first-party ``hub-esp32-node`` is named.

tests/core/test_core_scaffold.py installs a scaffold into a scratch environment,
runs its tests, and checks that ``hub plugins`` lists it and ``hub run`` loads it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from string import Template

from hub.core.errors import HubError
from hub.core.plugins.discovery import BUILTIN_PLUGINS
from hub.version import __version__

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
"""Lower-case letters and digits, words joined by single ``-`` or ``_``, starting with a letter."""

RESERVED_NAMES = frozenset({"hub", *(module.rsplit(".", 1)[-1] for module in BUILTIN_PLUGINS)})
"""The core's config section and the built-ins: an installed plugin under one of these names is never loaded."""

TEMPLATE_SUFFIX = ".tmpl"
PACKAGE_FOLDER = "PACKAGE"


class ScaffoldError(HubError):
    """The plugin cannot be written (bad name, taken name, target not empty); the message says why."""


@dataclass(frozen=True)
class PluginNames:
    """The names one ``NAME`` gives a new plugin; see the module docstring."""

    name: str
    distribution: str
    package: str

    @classmethod
    def of(cls, name: str) -> PluginNames:
        """The names for ``name``, or ScaffoldError when it is not a valid plugin name."""
        if not NAME_PATTERN.fullmatch(name):
            raise ScaffoldError(
                f"invalid plugin name {name!r}: use lower-case letters and digits, starting with a letter, "
                "words joined by - or _ (e.g. weather, my-sensor)"
            )
        plugin = name.replace("-", "_")
        return cls(plugin, "hub-" + plugin.replace("_", "-"), "hub_" + plugin)


def new_plugin(name: str, parent: Path, description: str | None = None, taken: Iterable[str] = ()) -> Path:
    """Write the distribution for plugin ``name`` into ``parent/hub-NAME/`` and return that folder.

    ``taken`` are the names of plugins already installed: a second plugin under one of
    those would be skipped at load, so it is refused here, as are the built-ins' names.
    ScaffoldError when the name is invalid or taken, or the target exists and is not empty.
    """
    names = PluginNames.of(name)
    if names.name in RESERVED_NAMES or names.name in set(taken):
        raise ScaffoldError(
            f"a plugin named {names.name!r} is already built in or installed (hub plugins lists it): "
            "choose another name, or uninstall that one first"
        )
    description = description or f"hub plugin: {names.name}"
    if any(ord(char) < 32 for char in description):
        raise ScaffoldError("the description must be one line of text")
    target = parent / names.distribution
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} already exists and is not an empty folder: choose another --dir or remove it")
    values = {
        "name": names.name,
        "distribution": names.distribution,
        "package": names.package,
        "description": description,
        "description_toml": json.dumps(description, ensure_ascii=False),  # a JSON string is a TOML basic string
        "hub_requirement": "hub-core>=" + ".".join(__version__.split(".")[:2]),
    }
    for relative, template in _templates(resources.files(__package__) / "templates", PurePosixPath()):
        path = target.joinpath(*(names.package if part == PACKAGE_FOLDER else part for part in relative.parts))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template(template.read_text(encoding="utf-8")).substitute(values), encoding="utf-8")
    return target


def _templates(folder: Traversable, relative: PurePosixPath) -> Iterator[tuple[PurePosixPath, Traversable]]:
    """``(path in the new distribution, template)`` for every template under ``folder``, sorted."""
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if entry.is_dir():
            yield from _templates(entry, relative / entry.name)
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            yield relative / entry.name.removesuffix(TEMPLATE_SUFFIX), entry


__all__ = ["PluginNames", "ScaffoldError", "new_plugin"]
