"""The plugin manager: registers plugins by their manifests and calls their hooks in dependency order, isolated.

A plugin that fails to import, has no manifest, needs a plugin that is
missing or failed, sits in a dependency cycle, or whose hook raises is
recorded in :attr:`PluginManager.failed` with the reason, unregistered, and the
hub carries on.  Hooks are called one plugin at a time in the order of
:mod:`.ordering` (stop and shutdown in reverse), and before each call a plugin
whose requirement failed meanwhile is dropped, so nothing starts on top of a
plugin that did not.

``HUB_TRACE_PLUGINS=1`` logs every hook call with its plugin and duration on
the logger ``hub.core.plugins.trace``: every hook the hub calls goes through
:meth:`PluginManager.call_sync` or :meth:`PluginManager.call_async`.
"""

from __future__ import annotations

import inspect
import logging
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pluggy

from hub.core.errors import ManifestError, StartupError

from . import hookspecs
from .discovery import BUILTIN_PLUGINS, Candidate, builtin_candidates, distribution_of, entry_point_candidates
from .manifest import Manifest, manifest_of
from .ordering import dependency_order, unmet_requirement

_LOGGER = logging.getLogger(__name__)
_TRACE = logging.getLogger(__name__.rsplit(".", 1)[0] + ".trace")

TRACE_ENV = "HUB_TRACE_PLUGINS"


@dataclass
class PluginInfo:
    """What ``hub plugins`` shows about one loaded plugin."""

    name: str
    version: str
    source: str
    """``builtin``, the distribution that provides the entry point, or ``direct``."""
    hooks: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)


class PluginManager:
    """pluggy's registry plus manifests, dependency order, per-plugin failure isolation and tracing."""

    def __init__(self, *, trace: bool | None = None) -> None:
        self.pm = pluggy.PluginManager("hub")
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        """Loaded plugins by name."""
        self.manifests: dict[str, Manifest] = {}
        """The manifest of every loaded plugin."""
        self.failed: dict[str, str] = {}
        """Plugin name -> why it was dropped."""
        self.trace = os.environ.get(TRACE_ENV, "") not in ("", "0") if trace is None else trace
        """Log every hook call with its duration (``HUB_TRACE_PLUGINS=1``)."""
        self._order: list[str] | None = None

    # --- loading ---------------------------------------------------------------
    def load(self, builtins: Iterable[str] = BUILTIN_PLUGINS, *, entry_point_plugins: bool = True) -> None:
        """Register the built-ins, then the installed plugins the allow-list admits."""
        for candidate in builtin_candidates(builtins):
            self._load(candidate)
        if entry_point_plugins:
            for candidate in entry_point_candidates():
                if candidate.name not in self.info:  # a built-in's name is taken: the built-in wins
                    self._load(candidate)

    def _load(self, candidate: Candidate) -> None:
        try:
            plugin = candidate.load()
        except Exception as err:  # isolation: a broken plugin must not stop the hub
            self._fail(candidate.name, f"failed to load: {err!r}")
            return
        self.register(plugin, candidate.name, version=candidate.version, source=candidate.source)

    def register(self, plugin: Any, name: str, *, version: str | None = None, source: str | None = None) -> None:
        """Register a plugin object (module, class or instance), e.g. from a test; refused ones are listed as failed.

        ``version`` and ``source`` default to the distribution whose package defines ``plugin``
        (or ``0`` and ``direct``); a version in the manifest wins over both.
        """
        if name in self.info:
            raise ValueError(f"a plugin named {name!r} is already registered")
        try:
            manifest = manifest_of(plugin, name)
        except ManifestError as err:
            self._fail(name, f"refused: {err}")
            return
        try:
            # pluggy validates hook signatures here: a bad one is a broken plugin too.
            self.pm.register(plugin, name=name)
        except Exception as err:  # isolation
            self._fail(name, f"failed to load: {err!r}")
            return
        if version is None or source is None:
            dist_name, dist_version = distribution_of(plugin) or ("direct", "0")
            version, source = version or dist_version, source or dist_name
        self.manifests[name] = manifest
        self.info[name] = PluginInfo(
            name,
            manifest.version or version,
            source,
            self._hooks_of(plugin),
            list(manifest.requires),
            list(manifest.after),
            list(manifest.sections),
        )
        self._order = None

    @staticmethod
    def _hooks_of(plugin: Any) -> list[str]:
        return sorted(
            attr for attr in dir(plugin) if attr.startswith("hub_") and hasattr(getattr(plugin, attr), "hub_impl")
        )

    # --- order -------------------------------------------------------------------
    @property
    def order(self) -> list[str]:
        """The loaded plugins in set-up order; working it out drops those that cannot be set up."""
        if self._order is None:
            while True:
                unmet = {
                    name: reason
                    for name, manifest in sorted(self.manifests.items())
                    if (reason := unmet_requirement(manifest, self.manifests, self.failed))
                }
                for name, reason in unmet.items():
                    self._fail(name, reason)
                order, refused = dependency_order(self.manifests)
                for name, reason in refused.items():
                    self._fail(name, reason)
                if not unmet and not refused:
                    break
            self._order = order
        return list(self._order)

    # --- calling -----------------------------------------------------------------
    def call_sync(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call one hook on every plugin in order, isolating failures; returns (plugin name, result) pairs.

        For hooks that must run before an event loop exists (config schemas, CLI commands).
        """
        results = []
        for name, impl in self._impls(hook_name, reverse=False):
            started = time.perf_counter()
            try:
                result = impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as err:  # isolation
                self._traced(hook_name, name, started, "raised")
                self._fail(name, f"{hook_name} raised {err!r}", exc=True)
                continue
            self._traced(hook_name, name, started)
            if result is not None:
                results.append((name, result))
        return results

    async def call_async(self, hook_name: str, *, reverse: bool = False, **kwargs: Any) -> list[tuple[str, Any]]:
        """Like :meth:`call_sync`, awaiting results that are awaitable, one plugin after another.

        ``reverse=True`` (stop and shutdown) calls dependents before what they depend on, and
        calls every plugin that is still loaded, whatever happened to its requirements: what
        was started must get the chance to stop.  A :class:`~hub.core.errors.StartupError` is
        not isolated: it propagates, so the hub does not pretend to run without something it
        cannot do without.
        """
        results = []
        for name, impl in self._impls(hook_name, reverse=reverse):
            started = time.perf_counter()
            try:
                result = impl.function(*[kwargs[arg] for arg in impl.argnames])
                if inspect.isawaitable(result):
                    result = await result
            except StartupError:
                self._traced(hook_name, name, started, "raised StartupError")
                raise
            except Exception as err:  # isolation
                self._traced(hook_name, name, started, "raised")
                self._fail(name, f"{hook_name} raised {err!r}", exc=True)
                continue
            self._traced(hook_name, name, started)
            if result is not None:
                results.append((name, result))
        return results

    def _impls(self, hook_name: str, *, reverse: bool) -> Iterator[tuple[str, Any]]:
        """Each loaded plugin's implementation of ``hook_name``, in order; checked just before its call."""
        impls = {impl.plugin_name: impl for impl in getattr(self.pm.hook, hook_name).get_hookimpls()}
        order = self.order
        for name in reversed(order) if reverse else order:
            if name not in self.manifests:
                continue  # dropped by an earlier call of this hook
            if not reverse and (reason := unmet_requirement(self.manifests[name], self.manifests, self.failed)):
                self._fail(name, reason)
                continue
            if name in impls:
                yield name, impls[name]

    def _traced(self, hook_name: str, name: str, started: float, outcome: str = "") -> None:
        if self.trace:
            elapsed = (time.perf_counter() - started) * 1000
            _TRACE.info("%s %s %.3f ms%s", hook_name, name, elapsed, f" ({outcome})" if outcome else "")

    def _fail(self, name: str, reason: str, *, exc: bool = False) -> None:
        self.failed[name] = reason
        self.info.pop(name, None)
        self.manifests.pop(name, None)
        if self._order is not None and name in self._order:
            self._order.remove(name)
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        _LOGGER.error("Plugin %s disabled: %s", name, reason, exc_info=exc)
