"""config.yaml's ``nodes:`` section: nodes known in advance, with their name, description, area and tags.

::

    nodes:
      24:6f:28:aa:00:01:            # a MAC in any common spelling
        name: Pump
        area: greenhouse 2
        tags: [beta, relay-board]
      24-6F-28-AA-00-02: {}         # just known: listed before it first connects

The core owns the section (it describes the registry, which is the core's).
It is applied at every start once every plugin has set up, so after storage
restored the registry: a node not yet known is registered (it shows, with
status ``unknown``, before it first connects), and for every key the section
sets, config.yaml wins over what was stored or set through the API since.
Keys it leaves out stay as they are.  The changes go through
:meth:`~hub.core.registry.NodeRegistry.update_node`, so they are evented
and stored like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import voluptuous as vol

from ..errors import InvalidMac
from ..labels import normalize_area, normalize_tags
from ..mac import normalize_mac

if TYPE_CHECKING:
    from ..registry import NodeRegistry

_LOGGER = logging.getLogger(__name__)


def _checked(normalize: Any) -> Any:
    def validator(value: Any) -> Any:
        try:
            return normalize(value)
        except ValueError as err:
            raise vol.Invalid(str(err)) from None

    return validator


def _text(max_length: int, min_length: int = 0) -> vol.All:
    return vol.All(str, vol.Strip, vol.Length(min=min_length, max=max_length))


def _tag_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise vol.Invalid("expected a list of tags, e.g. [beta, relay-board]")
    return _checked(normalize_tags)(value)


NODE_SCHEMA = vol.Schema(
    {
        vol.Optional("name"): _text(100, min_length=1),
        vol.Optional("description"): _text(1000),
        vol.Optional("area"): _checked(normalize_area),
        vol.Optional("tags"): _tag_list,
    }
)
"""One node's settings; every key optional (only the keys given are applied)."""


def validate_nodes(value: Any) -> dict[str, dict[str, Any]]:
    """``{MAC in any spelling: settings}`` → ``{canonical MAC: settings}``; every problem at its key's line."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise vol.Invalid("expected a mapping of node MAC: {name, description, area, tags}")
    errors: list[vol.Invalid] = []
    nodes: dict[str, dict[str, Any]] = {}
    spelled: dict[str, Any] = {}
    for key, settings in value.items():
        if isinstance(key, int) and not isinstance(key, bool):  # YAML 1.1 reads 24:00:28:11:00:01 as a number
            message = "YAML read this MAC as a number: quote a MAC made only of digits ('24:00:28:11:00:01')"
            errors.append(vol.Invalid(message, path=[key]))
            continue
        try:
            node_id = normalize_mac(key) if isinstance(key, str) else None
        except InvalidMac:
            node_id = None
        if node_id is None:
            errors.append(vol.Invalid(f"not a MAC address: {key!r} (e.g. 24:6f:28:aa:00:01)", path=[key]))
            continue
        if node_id in spelled:
            errors.append(vol.Invalid(f"the same node as {spelled[node_id]!r}", path=[key]))
            continue
        spelled[node_id] = key
        try:
            nodes[node_id] = NODE_SCHEMA({} if settings is None else settings)
        except vol.MultipleInvalid as err:
            errors.extend(vol.Invalid(error.msg, path=[key, *error.path]) for error in err.errors)
    if errors:
        raise vol.MultipleInvalid(errors)
    return nodes


NODES_SCHEMA = vol.Schema(validate_nodes)
"""The ``nodes:`` section."""


def apply_node_config(registry: NodeRegistry, nodes: Mapping[str, Mapping[str, Any]]) -> None:
    """Register the configured nodes not yet known and set what the section says on each (config wins)."""
    registered = changed = 0
    for node_id, settings in nodes.items():
        known = node_id in registry
        node = registry.get_or_register(node_id, name=settings.get("name"), limited=False)  # the operator's own
        registered += not known
        changed += bool(registry.update_node(node, **settings))
    if nodes:
        _LOGGER.info("nodes: %d configured, %d registered, %d changed by config.yaml", len(nodes), registered, changed)
