"""config.yaml: loading (YAML with tags and line numbers) and validation (sections from plugins)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import voluptuous as vol

from ..limits import Limits
from .loader import load_config_file, load_yaml
from .nodes import NODES_SCHEMA, apply_node_config
from .validation import SectionSchemas, validate_config

LOG_LEVELS = ("debug", "info", "warning", "error")


def _at_least(minimum: int) -> vol.All:
    return vol.All(int, vol.Range(min=minimum))


_DEFAULT_LIMITS = Limits()
LIMITS_SCHEMA = vol.Schema(
    {
        vol.Optional(name, default=getattr(_DEFAULT_LIMITS, name)): _at_least(minimum)
        for name, minimum in (
            ("max_nodes", 1),
            ("new_nodes_per_minute", 1),
            ("max_entities_per_node", 1),
            ("max_attributes", 8),
            ("max_attribute_bytes", 64),
        )
    }
)
"""``hub: limits:``, the caps of :mod:`hub.core.limits` (docs/config.md says why each default)."""

CORE_SCHEMA = vol.Schema(
    {
        vol.Optional("name", default="hub"): str,
        vol.Optional("data_dir", default="hub-data"): str,
        vol.Optional("log_level", default="info"): vol.All(vol.Lower, vol.In(LOG_LEVELS)),
        vol.Optional("limits", default={}): LIMITS_SCHEMA,
    }
)
"""The core's own section, ``hub:``: the instance name, where it keeps data, how much it logs, its limits."""

CORE_SCHEMAS = {"hub": CORE_SCHEMA, "nodes": NODES_SCHEMA}
"""The sections the core owns: ``hub:`` and ``nodes:`` (nodes known in advance, :mod:`.nodes`)."""


def load_config(path: Path, schemas: SectionSchemas, *, failed_plugins: Collection[str] = ()) -> dict[str, Any]:
    """Read and validate ``path`` against the core's sections plus every plugin's; ConfigError on problems.

    A missing file is an empty config (the embedded defaults), so ``hub run`` works on a fresh
    machine.  ``hub.data_dir`` comes back absolute, relative to the config file's folder.
    """
    raw = load_config_file(path) if path.exists() else {}
    config = validate_config(raw, {**CORE_SCHEMAS, **schemas}, file_label=path.name, failed_plugins=failed_plugins)
    data_dir = Path(config["hub"]["data_dir"]).expanduser()
    if not data_dir.is_absolute():
        data_dir = path.resolve().parent / data_dir
    config["hub"]["data_dir"] = str(data_dir)
    return config


__all__ = ["CORE_SCHEMA", "CORE_SCHEMAS", "apply_node_config", "load_config", "load_yaml", "validate_config"]
