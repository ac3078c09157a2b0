"""Building a hub from a config dict, as ``hub run`` builds one from config.yaml: for fixtures and benchmarks.

One place knows how (load the plugins, validate the config against every section
they declare, make the :class:`~hub.Hub`), so ``hub_factory`` and the benchmarks
do it the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hub import ROLE_ALL, Hub, Role
from hub.core.bootstrap import load_plugins
from hub.core.config import CORE_SCHEMAS, validate_config
from hub.core.plugins.discovery import BUILTIN_PLUGINS
from hub.core.plugins.sections import config_schemas


def make_hub(
    config: dict[str, Any] | None = None,
    *,
    builtins: Iterable[str] = BUILTIN_PLUGINS,
    plugins: Iterable[tuple[Any, str]] = (),
    entry_points: bool = False,
    role: Role = ROLE_ALL,
    clock: Callable[[], float] | None = None,
) -> Hub:
    """A hub, not started: ``builtins`` are module names, ``plugins`` ``(object, name)`` pairs registered after them.

    ``config`` is what config.yaml would hold; it is validated (``ConfigError``).  Installed
    (entry-point) plugins load only with ``entry_points=True``, subject to ``HUB_LOAD_PLUGINS``.
    """
    manager = load_plugins(builtins, entry_point_plugins=entry_points)
    for plugin, name in plugins:
        manager.register(plugin, name)
    validated = validate_config(dict(config or {}), {**CORE_SCHEMAS, **config_schemas(manager)})
    extra: dict[str, Any] = {}
    if clock is not None:
        extra["clock"] = clock
        if callable(getattr(clock, "monotonic", None)):  # a FakeClock: its monotonic side too
            extra["monotonic"] = clock.monotonic  # type: ignore[attr-defined]
    return Hub(validated, manager, role=role, **extra)
