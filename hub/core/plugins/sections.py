"""Which plugin owns which config.yaml section: the schemas to validate against, and the conflicts that stop the hub.

Each section has one owner.  Two plugins claiming one section, a plugin
claiming one of the core's (``hub:``, ``nodes:``), a plugin returning a schema for a section its
manifest does not declare, or declaring one it gives no schema for: each is a
:class:`~hub.core.errors.ConfigError` naming the plugins, before anything
starts, so ``hub check-config`` reports it too.  Silently letting one schema
replace another would validate the user's section against the wrong plugin.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hub.core.config import CORE_SCHEMAS
from hub.core.errors import ConfigError

from .manager import PluginManager

CORE_SECTIONS = tuple(CORE_SCHEMAS)
"""Sections the core itself owns."""


def config_schemas(plugins: PluginManager) -> dict[str, Any]:
    """Section -> schema for every loaded plugin's sections; ConfigError listing every conflict."""
    returned = plugins.call_sync("hub_config_schema")  # first: it may drop plugins (a hook raising, a dependency)
    problems: list[str] = []
    owners: dict[str, str] = {section: "the core" for section in CORE_SECTIONS}
    for name in plugins.order:
        for section in plugins.manifests[name].sections:
            if section in owners:
                problems.append(f"config section {section!r} is claimed by both {owners[section]} and plugin {name}")
            else:
                owners[section] = f"plugin {name}"
    schemas: dict[str, Any] = {}
    for name, sections in returned:
        declared = plugins.manifests[name].sections
        if not isinstance(sections, Mapping):
            problems.append(f"plugin {name}: hub_config_schema returned {type(sections).__name__}, not a dict")
            continue
        for section, schema in sections.items():
            if section not in declared:
                problems.append(
                    f"plugin {name} returns a schema for config section {section!r}, which its manifest does "
                    f"not declare (sections={declared!r})"
                )
            elif owners[section] == f"plugin {name}":
                schemas[section] = schema
    given = {(name, section) for name, sections in returned if isinstance(sections, Mapping) for section in sections}
    for name in plugins.order:
        for section in plugins.manifests[name].sections:
            if (name, section) not in given:
                problems.append(
                    f"plugin {name} declares config section {section!r} in its manifest, "
                    "but its hub_config_schema returns no schema for it"
                )
    if problems:
        raise ConfigError(problems)
    return schemas
