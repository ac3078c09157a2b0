"""Where plugins come from: the built-ins, the ``hub`` entry-point group, and the distribution behind an object.

Built-ins are the integrations every installation needs; installed plugins are
found through the entry-point group ``hub``; ``HUB_LOAD_PLUGINS``
(comma-separated entry-point names) restricts which of those load: unset
loads all, empty loads none.  Nothing is imported here: each candidate's
``load`` does that, so the manager can isolate a plugin that fails to import.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from types import ModuleType
from typing import Any

from hub.version import __version__

ENTRY_POINT_GROUP = "hub"
ALLOW_LIST_ENV = "HUB_LOAD_PLUGINS"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "hub.plugins.storage",
    "hub.plugins.broker",
    "hub.plugins.mqtt",
    "hub.plugins.presence",
    "hub.plugins.http",
    "hub.plugins.rabbitmq",
)
"""Module names of the built-ins; a built-in's plugin name is its last component."""

SOURCE_BUILTIN = "builtin"


@dataclass(frozen=True)
class Candidate:
    """A plugin that may be loaded: its name, how to import it, and what provides it."""

    name: str
    load: Callable[[], Any]
    version: str
    source: str
    """``builtin`` or the distribution that provides the entry point."""


def builtin_candidates(modules: Iterable[str]) -> Iterator[Candidate]:
    """The built-ins, at the hub's own version."""
    for module_name in modules:
        yield Candidate(
            module_name.rsplit(".", 1)[-1],
            functools.partial(importlib.import_module, module_name),
            __version__,
            SOURCE_BUILTIN,
        )


def entry_point_candidates() -> Iterator[Candidate]:
    """The installed plugins the allow-list admits, sorted by name so discovery order never matters."""
    allowed = os.environ.get(ALLOW_LIST_ENV)
    allow = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        if allow is not None and entry_point.name not in allow:
            continue
        dist = entry_point.dist
        yield Candidate(
            entry_point.name,
            entry_point.load,
            dist.version if dist else "?",
            dist.name if dist else "entry point",
        )


def distribution_of(plugin: Any) -> tuple[str, str] | None:
    """``(distribution name, version)`` of the installed distribution whose package defines ``plugin``, if any.

    For plugins registered directly (tests, benchmarks), so they show the same version as when
    loaded through their entry point.
    """
    module = plugin.__name__ if isinstance(plugin, ModuleType) else getattr(plugin, "__module__", "")
    names = _packages_distributions().get(str(module).split(".", 1)[0])
    if not names:
        return None
    return names[0], metadata.version(names[0])


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    # Scans every installed distribution: done once per process (direct registrations are a test-time thing).
    return metadata.packages_distributions()
