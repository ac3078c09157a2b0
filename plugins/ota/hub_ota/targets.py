"""Which nodes a rollout is for: a target as the hub's ``Target`` spells it.

``{"nodes": [...], "tags": [...], "area": "...", "not_version": "..."}``: every key given narrows the selection
(they intersect); a target with no key is refused, and so is a node id the registry does not know (a typo must not
silently shrink a rollout). This hub's registry has no tags or areas yet, so a target naming them is refused with
a clear message rather than matching nothing.
"""

from __future__ import annotations

from typing import Any, TypedDict

from hub import HubError, InvalidMac, Node, NodeRegistry, normalize_mac

TARGET_KEYS = ("nodes", "tags", "area", "not_version")


class Target(TypedDict, total=False):
    nodes: list[str]
    tags: list[str]
    area: str
    not_version: str


class InvalidTarget(HubError, ValueError):
    """A target that cannot be resolved; ``code`` is ``invalid_target`` or ``node_not_found``."""

    def __init__(self, message: str, *, code: str = "invalid_target") -> None:
        super().__init__(message)
        self.code = code


def select_nodes(registry: NodeRegistry, target: Any) -> list[Node]:
    """The nodes ``target`` selects, sorted by id (possibly none); :class:`InvalidTarget` when it is malformed."""
    if not isinstance(target, dict):
        raise InvalidTarget(f"a target is an object with some of: {', '.join(TARGET_KEYS)}")
    unknown = sorted(str(key) for key in target if key not in TARGET_KEYS)
    if unknown:
        raise InvalidTarget(f"unknown target keys: {', '.join(unknown)} (known: {', '.join(TARGET_KEYS)})")
    if not target:
        raise InvalidTarget(f"a target needs at least one of: {', '.join(TARGET_KEYS)}")
    if "tags" in target or "area" in target:
        raise InvalidTarget("this hub's nodes have no tags or areas yet: target nodes or not_version")
    candidates: list[Node] = list(registry)
    if "nodes" in target:
        candidates = _listed(registry, target["nodes"])
    if "not_version" in target:
        version = target["not_version"]
        if not isinstance(version, str) or not version.strip():
            raise InvalidTarget("not_version must be a non-empty string")
        candidates = [node for node in candidates if node.firmware_version != version.strip()]
    return sorted(candidates, key=lambda node: node.node_id)


def _listed(registry: NodeRegistry, node_ids: object) -> list[Node]:
    if isinstance(node_ids, str) or not isinstance(node_ids, list):
        raise InvalidTarget("nodes must be a list of node ids")
    found: dict[str, Node] = {}
    missing: list[str] = []
    for node_id in node_ids:
        node = _find(registry, node_id) if isinstance(node_id, str) else None
        if node is None:
            missing.append(repr(node_id))
        else:
            found[node.node_id] = node
    if missing:
        raise InvalidTarget(f"no node {', '.join(missing)}", code="node_not_found")
    return list(found.values())


def _find(registry: NodeRegistry, node_id: str) -> Node | None:
    node = registry.get(node_id)
    if node is None:
        try:
            node = registry.get(normalize_mac(node_id))
        except InvalidMac:
            return None
    return node
