"""Nodes known before they first connect: every node file of firmware/esphome/ is a node in the registry.

A node file names an ESPHome node (``name``, ``friendly_name``, and an area
when ``esphome: area:`` is set).  :class:`DefinedNodes` keeps the registry in
line with the folder:

* a defined node the hub has never heard from is registered with status
  ``unknown`` (never seen: not online), its friendly name and area, and the
  attributes ``esphome_name`` and ``esphome_yaml`` (the file that defines it).
  Its id is the MAC when the file states one (a ``mac`` substitution), else
  ``esphome:<name>`` — a *placeholder*, since the MAC is the node's id once it
  speaks;
* a node the hub already knows by that ESPHome name (the attribute
  ``esphome_name``, which ``esphome/discover/<name>`` sets — as should any
  integration that learns an ESPHome node's name) gets ``esphome_yaml``;
* when a node with that name appears under its MAC, the placeholder is folded
  into it: its area, tags and description carry over (the MAC node's own win)
  and the placeholder is removed, so the fleet shows one node, not two;
* a placeholder whose file is gone is removed; a real node whose file is gone
  loses ``esphome_yaml`` (it stays a node: it exists).

Files are read again only when their size or modification time changed, so a
sync of 500 files is 500 ``stat`` calls.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from hub import (
    EVENT_NODE_REGISTERED,
    EVENT_NODE_UPDATED,
    STATUS_UNKNOWN,
    Event,
    Node,
    NodeRegisteredData,
    NodeUpdatedData,
)

from .firmware import NodeFile, read_node

if TYPE_CHECKING:
    from hub import Hub

_LOGGER = logging.getLogger(__name__)

PLACEHOLDER_PREFIX: Final = "esphome:"
NAME_ATTRIBUTE: Final = "esphome_name"
YAML_ATTRIBUTE: Final = "esphome_yaml"


def placeholder_id(name: str) -> str:
    return f"{PLACEHOLDER_PREFIX}{name}"


class NodeFiles:
    """The node files of a folder, each read again only when it changed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[Path, tuple[tuple[int, int], NodeFile]] = {}

    def scan(self) -> list[NodeFile]:
        """The node files now, sorted by file name (empty when the folder does not exist)."""
        if not self.directory.is_dir():
            return []
        found: dict[Path, tuple[tuple[int, int], NodeFile]] = {}
        for path in sorted(self.directory.glob("*.yaml")):
            if path.name.startswith("secrets"):
                continue
            try:
                stat = path.stat()
            except OSError:
                continue
            key = (stat.st_size, stat.st_mtime_ns)
            cached = self._cache.get(path)
            found[path] = cached if cached is not None and cached[0] == key else (key, read_node(path))
        self._cache = found
        return [node for _key, node in found.values()]


class DefinedNodes:
    """Keeps the registry in line with the node files; see the module docstring."""

    def __init__(self, hub: Hub, directory: Path) -> None:
        self._registry = hub.registry
        self.files = NodeFiles(directory)
        self._defined: dict[str, NodeFile] = {}
        hub.bus.listen(EVENT_NODE_REGISTERED, self._on_registered)
        hub.bus.listen(EVENT_NODE_UPDATED, self._on_updated)

    @property
    def defined(self) -> dict[str, NodeFile]:
        """Node name → its file, as of the last :meth:`sync`."""
        return self._defined

    def by_name(self) -> dict[str, Node]:
        """Registered nodes by ESPHome name (a real node wins over a placeholder)."""
        found: dict[str, Node] = {}
        for node in self._registry:
            name = node.attributes.get(NAME_ATTRIBUTE)
            if isinstance(name, str) and (name not in found or found[name].node_id.startswith(PLACEHOLDER_PREFIX)):
                found[name] = node
        return found

    def sync(self) -> list[NodeFile]:
        """Read the folder and bring the registry in line; returns the node files."""
        files = self.files.scan()
        defined = {node.name: node for node in files if node.name}
        known = self.by_name()
        for name, node_file in defined.items():
            node = known.get(name) or (self._registry.get(node_file.mac) if node_file.mac else None)
            if node is None:
                self._register(node_file)
            else:
                self._mark(node, node_file)
                if not node.node_id.startswith(PLACEHOLDER_PREFIX):
                    self._fold(node)
        for node in list(self._registry):
            name = node.attributes.get(NAME_ATTRIBUTE)
            if node.attributes.get(YAML_ATTRIBUTE) and name not in defined:
                if _never_seen(node) and node.node_id.startswith(PLACEHOLDER_PREFIX):
                    self._registry.remove(node.node_id)
                else:
                    self._registry.update_node(node, attributes={YAML_ATTRIBUTE: None})
        self._defined = defined
        return files

    def _register(self, node_file: NodeFile) -> None:
        assert node_file.name is not None
        node_id = node_file.mac or placeholder_id(node_file.name)
        # A node file is the operator's own, like config.yaml's nodes: never refused by hub: limits:.
        node = self._registry.get_or_register(node_id, name=node_file.friendly_name or node_file.name, limited=False)
        self._mark(node, node_file)
        if node_file.area and node.area is None:
            self._registry.update_node(node, area=node_file.area)
        _LOGGER.info("ESPHome node %r (%s) defined in %s, not seen yet", node_file.name, node_id, node_file.path.name)

    def _mark(self, node: Node, node_file: NodeFile) -> None:
        changes: dict[str, Any] = {}
        attributes = {NAME_ATTRIBUTE: node_file.name, YAML_ATTRIBUTE: node_file.path.name}
        if any(node.attributes.get(key) != value for key, value in attributes.items()):
            changes["attributes"] = attributes
        if node_file.area and node.area is None:
            changes["area"] = node_file.area
        if changes:
            self._registry.update_node(node, **changes)

    # --- a defined node connects ---------------------------------------------------------------
    def _on_registered(self, event: Event[NodeRegisteredData]) -> None:
        name = event.data["node"]["attributes"].get(NAME_ATTRIBUTE)
        if isinstance(name, str) and not event.data["node_id"].startswith(PLACEHOLDER_PREFIX):
            self._connected(event.data["node_id"], name)

    def _on_updated(self, event: Event[NodeUpdatedData]) -> None:
        name = event.data["changes"].get("attributes", {}).get(NAME_ATTRIBUTE)
        if isinstance(name, str) and not event.data["node_id"].startswith(PLACEHOLDER_PREFIX):
            self._connected(event.data["node_id"], name)

    def _connected(self, node_id: str, name: str) -> None:
        node = self._registry.get(node_id)
        node_file = self._defined.get(name)
        if node is None:
            return
        if node_file is not None and node.attributes.get(YAML_ATTRIBUTE) != node_file.path.name:
            self._registry.update_node(node, attributes={YAML_ATTRIBUTE: node_file.path.name})
        self._fold(node)

    def _fold(self, node: Node) -> None:
        """Merge the placeholder of ``node``'s ESPHome name into it, then remove the placeholder."""
        name = node.attributes.get(NAME_ATTRIBUTE)
        placeholder = self._registry.get(placeholder_id(name)) if isinstance(name, str) else None
        if placeholder is None or placeholder is node:
            return
        changes: dict[str, Any] = {}
        if node.area is None and placeholder.area is not None:
            changes["area"] = placeholder.area
        if set(placeholder.tags) - set(node.tags):
            changes["tags"] = sorted({*node.tags, *placeholder.tags})
        if not node.description and placeholder.description:
            changes["description"] = placeholder.description
        if placeholder.attributes.get(YAML_ATTRIBUTE) and not node.attributes.get(YAML_ATTRIBUTE):
            changes["attributes"] = {YAML_ATTRIBUTE: placeholder.attributes[YAML_ATTRIBUTE]}
        if changes:
            self._registry.update_node(node, **changes)
        self._registry.remove(placeholder.node_id)
        _LOGGER.info("ESPHome node %r connected as %s (was %s until now)", name, node.node_id, placeholder.node_id)


def _never_seen(node: Node) -> bool:
    return node.status == STATUS_UNKNOWN and node.last_seen is None and not node.entities
