"""Building a hub from a config file: plugins first (they declare the config), then config, then the Hub."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from hub.core.plugins.manager import BUILTIN_PLUGINS, PluginManager

from .config import load_config
from .hub import ROLE_ALL, Hub

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def load_plugins(builtins: Iterable[str] = BUILTIN_PLUGINS, *, entry_point_plugins: bool = True) -> PluginManager:
    """A plugin manager with the built-ins and the allowed installed plugins registered."""
    plugins = PluginManager()
    plugins.load(builtins, entry_point_plugins=entry_point_plugins)
    return plugins


def config_schemas(plugins: PluginManager) -> dict[str, object]:
    """Every section schema the loaded plugins declare."""
    schemas: dict[str, object] = {}
    for _name, sections in plugins.call_sync("hub_config_schema"):
        schemas.update(sections)
    return schemas


def build_hub(config_path: Path, *, role: str = ROLE_ALL, plugins: PluginManager | None = None) -> Hub:
    """Load plugins and config (ConfigError if invalid) and return a Hub ready to start."""
    plugins = plugins or load_plugins()
    config = load_config(config_path, config_schemas(plugins), failed_plugins=list(plugins.failed))
    return Hub(config, plugins, role=role)


def configure_logging(level: str = "info") -> None:
    """Plain timestamped lines on stderr, at the configured level; noisy libraries kept at WARNING."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, force=True)
    for noisy in ("gmqtt", "amqtt", "transitions", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
