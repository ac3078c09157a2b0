"""Loading plugins (built-ins and the ``hub`` entry-point group) and calling their hooks in isolation.

Built-ins are the integrations every installation needs; they use exactly the
hook API a third-party plugin uses.  Installed plugins are found through the
entry-point group ``hub``; ``HUB_LOAD_PLUGINS`` (comma-separated entry-point
names) restricts which of those load: unset loads all, empty loads none.

A plugin that fails to import, or whose hook raises, is recorded in
:attr:`PluginManager.failed`, unregistered, and the hub carries on.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy

from hub.core.errors import StartupError
from hub.version import __version__

from . import hookspecs

_LOGGER = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hub"
ALLOW_LIST_ENV = "HUB_LOAD_PLUGINS"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "hub.plugins.storage",
    "hub.plugins.broker",
    "hub.plugins.mqtt",
    "hub.plugins.presence",
    "hub.plugins.http",
)


@dataclass
class PluginInfo:
    """What ``hub plugins`` shows about one loaded plugin."""

    name: str
    version: str
    source: str
    """``builtin`` or the distribution that provides the entry point."""
    hooks: list[str] = field(default_factory=list)


class PluginManager:
    """pluggy's manager plus discovery, the allow-list and per-plugin failure isolation."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("hub")
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.failed: dict[str, str] = {}
        """Plugin name -> why it was dropped."""

    # --- loading ---------------------------------------------------------------
    def load(self, builtins: Iterable[str] = BUILTIN_PLUGINS, *, entry_point_plugins: bool = True) -> None:
        """Register the built-ins, then the installed plugins the allow-list admits."""
        for module_name in builtins:
            self._load_module(module_name.rsplit(".", 1)[-1], module_name, __version__, "builtin")
        if entry_point_plugins:
            self._load_entry_points()

    def register(self, plugin: Any, name: str, *, version: str = "0", source: str = "direct") -> None:
        """Register a plugin object (module, class or instance) directly, e.g. from a test."""
        self.pm.register(plugin, name=name)
        self.info[name] = PluginInfo(name, version, source, self._hooks_of(plugin))

    def _load_entry_points(self) -> None:
        allowed = os.environ.get(ALLOW_LIST_ENV)
        allow = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            if allow is not None and entry_point.name not in allow:
                continue
            if entry_point.name in self.info:
                continue
            dist = entry_point.dist
            version = dist.version if dist else "?"
            source = dist.name if dist else "entry point"
            try:
                plugin = entry_point.load()
                # pluggy validates hook signatures here: a bad one is a broken plugin too.
                self.register(plugin, entry_point.name, version=version, source=source)
            except Exception as err:  # isolation: a broken plugin must not stop the hub
                self._fail(entry_point.name, f"failed to load: {err!r}")

    def _load_module(self, name: str, module_name: str, version: str, source: str) -> None:
        try:
            module: ModuleType = importlib.import_module(module_name)
            self.register(module, name, version=version, source=source)
        except Exception as err:  # isolation
            self._fail(name, f"failed to load: {err!r}")

    @staticmethod
    def _hooks_of(plugin: Any) -> list[str]:
        return sorted(
            attr for attr in dir(plugin) if attr.startswith("hub_") and hasattr(getattr(plugin, attr), "hub_impl")
        )

    # --- calling -----------------------------------------------------------------
    def call_sync(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call one hook on every plugin, isolating failures; returns (plugin name, result) pairs.

        For hooks that must run before an event loop exists (config schemas, CLI commands).
        """
        results = []
        for name, impl in self._impls(hook_name):
            if name in self.failed:  # disabled earlier in this round (storage collects hub_db_migrations)
                continue
            try:
                result = impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as err:  # isolation
                self._fail(name, f"{hook_name} raised {err!r}", exc=True)
                continue
            if result is not None:
                results.append((name, result))
        return results

    async def call_async(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Like :meth:`call_sync`, awaiting results that are awaitable, one plugin after another.

        A :class:`~hub.core.errors.StartupError` is not isolated: it propagates, so the hub does
        not pretend to run without something it cannot do without.
        """
        results = []
        for name, impl in self._impls(hook_name):
            if name in self.failed:  # disabled earlier in this round (storage collects hub_db_migrations)
                continue
            try:
                result = impl.function(*[kwargs[arg] for arg in impl.argnames])
                if inspect.isawaitable(result):
                    result = await result
            except StartupError:
                raise
            except Exception as err:  # isolation
                self._fail(name, f"{hook_name} raised {err!r}", exc=True)
                continue
            if result is not None:
                results.append((name, result))
        return results

    def _impls(self, hook_name: str) -> list[tuple[str, Any]]:
        hook = getattr(self.pm.hook, hook_name)
        # pluggy's own call order: last registered first, tryfirst/trylast respected.  So
        # the built-ins (registered first) set up last and shut down last, after the
        # plugins that build on them.
        impls = reversed(hook.get_hookimpls())
        return [(impl.plugin_name, impl) for impl in impls if impl.plugin_name not in self.failed]

    def _fail(self, name: str, reason: str, *, exc: bool = False) -> None:
        self.failed[name] = reason
        self.info.pop(name, None)
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        _LOGGER.error("Plugin %s disabled: %s", name, reason, exc_info=exc)
