"""Targets: which nodes a bulk operation (a command to many, an OTA rollout) is meant for.

A :class:`Target` names nodes by any combination of: a list of node ids, tags,
an area, and "not on firmware version V".  Every key given narrows the
selection (they intersect), so ``{"area": "greenhouse 2", "tags": ["beta"]}``
is the beta nodes in greenhouse 2.  Within ``tags`` a node must carry every
tag listed.  A target with no key at all is refused: "every node" is too
easy to send by mistake (``{"not_version": V}`` is the way to reach the whole
fleet, as a rollout does).

One function resolves it for everybody (REST, the CLI, plugins), so a target
selects the same nodes wherever it is used.
"""

from __future__ import annotations

from typing import TypedDict

from .errors import InvalidMac, InvalidTarget
from .labels import area_key, normalize_area, normalize_tags
from .mac import normalize_mac
from .registry import Node, NodeRegistry

TARGET_KEYS = ("nodes", "tags", "area", "not_version")


class Target(TypedDict, total=False):
    """Which nodes: every key given must hold for a node to be selected."""

    nodes: list[str]
    """These nodes (ids; a MAC in any common spelling)."""
    tags: list[str]
    """Nodes carrying every one of these tags."""
    area: str
    """Nodes in this area (compared ignoring case)."""
    not_version: str
    """Nodes whose firmware version is not this one (nodes that never reported a version included)."""


def find_node(registry: NodeRegistry, node_id: str) -> Node | None:
    """The node with that id, or whose MAC this is in another spelling; None if unknown."""
    node = registry.get(node_id)
    if node is None:
        try:
            node = registry.get(normalize_mac(node_id))
        except InvalidMac:
            return None
    return node


def select_nodes(registry: NodeRegistry, target: Target) -> list[Node]:
    """The nodes ``target`` selects, sorted by id (possibly none).

    :class:`~hub.core.errors.InvalidTarget` (a ``ValueError``) for a target that names no key,
    has an unknown key or a value of the wrong shape, or lists node ids the registry does
    not know (``code`` ``node_not_found``; a typo must not silently shrink a rollout).
    """
    if not isinstance(target, dict):
        raise InvalidTarget(f"a target is an object with some of: {', '.join(TARGET_KEYS)}")
    unknown = sorted(str(key) for key in target if key not in TARGET_KEYS)
    if unknown:
        raise InvalidTarget(f"unknown target keys: {', '.join(unknown)} (known: {', '.join(TARGET_KEYS)})")
    if not target:
        raise InvalidTarget(f"a target needs at least one of: {', '.join(TARGET_KEYS)}")
    candidates: list[Node] = list(registry)
    if "nodes" in target:
        candidates = _listed(registry, target["nodes"])
    if "tags" in target:
        try:
            wanted = set(normalize_tags(target["tags"]))
        except ValueError as err:
            raise InvalidTarget(str(err)) from None
        candidates = [node for node in candidates if wanted.issubset(node.tags)]
    if "area" in target:
        try:
            area = normalize_area(target["area"])
        except ValueError as err:
            raise InvalidTarget(str(err)) from None
        if area is None:
            raise InvalidTarget("area must be a string")
        key = area_key(area)
        candidates = [node for node in candidates if node.area is not None and area_key(node.area) == key]
    if "not_version" in target:
        version = target["not_version"]
        if not isinstance(version, str) or not version.strip():
            raise InvalidTarget("not_version must be a non-empty string")
        version = version.strip()
        candidates = [node for node in candidates if node.firmware_version != version]
    return sorted(candidates, key=lambda node: node.node_id)


def _listed(registry: NodeRegistry, node_ids: object) -> list[Node]:
    if isinstance(node_ids, str) or not isinstance(node_ids, list | tuple):
        raise InvalidTarget("nodes must be a list of node ids")
    found: dict[str, Node] = {}
    missing: list[str] = []
    for node_id in node_ids:
        node = find_node(registry, node_id) if isinstance(node_id, str) else None
        if node is None:
            missing.append(repr(node_id))
        else:
            found[node.node_id] = node
    if missing:
        raise InvalidTarget(f"no node {', '.join(missing)}", code="node_not_found")
    return list(found.values())
