"""Building a hub from a config file: plugins first (they declare the config), then config, then the Hub."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from hub.core.plugins.discovery import BUILTIN_PLUGINS
from hub.core.plugins.manager import PluginManager
from hub.core.plugins.sections import config_schemas

from .config import load_config
from .hub import Hub
from .roles import ROLE_ALL, Role

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def load_plugins(builtins: Iterable[str] = BUILTIN_PLUGINS, *, entry_point_plugins: bool = True) -> PluginManager:
    """A plugin manager with the built-ins and the allowed installed plugins registered."""
    plugins = PluginManager()
    plugins.load(builtins, entry_point_plugins=entry_point_plugins)
    return plugins


def build_hub(config_path: Path, *, role: Role = ROLE_ALL, plugins: PluginManager | None = None) -> Hub:
    """Load plugins and config (ConfigError if invalid) and return a Hub ready to start."""
    plugins = plugins or load_plugins()
    config = load_config(config_path, config_schemas(plugins), failed_plugins=list(plugins.failed))
    return Hub(config, plugins, role=role)


def configure_logging(level: str = "info") -> None:
    """Plain timestamped lines on stderr, at the configured level; noisy libraries kept at WARNING."""
    logging.basicConfig(level=level.upper(), format=LOG_FORMAT, force=True)
    for noisy in ("gmqtt", "amqtt", "transitions", "aiosqlite", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
