"""Stable names: how a node that does not know its own id yet (an ESPHome node before its first flash does not
know its MAC) still finds its update manifest.

A plugin that knows nodes by a name of their own sets the node attribute ``<kind>_name`` on them (the ``esphome``
plugin sets ``esphome_name``, on the placeholder node it registers for a node file and on the node under its MAC
once it connects). The manifest ``/api/ota/manifest/<kind>/<name>.json?key=…`` is the manifest of whichever node
carries that name now; its key is an HMAC of ``<kind>:<name>``, so the hub computes it before the node exists,
and the node keeps the same URL from its first build on. This plugin imports no other plugin: the attribute is
the whole contract.
"""

from __future__ import annotations

import re
from typing import Final

from hub import Node, NodeRegistry

NAME_KIND: Final = re.compile(r"[a-z][a-z0-9_]{0,31}")
"""A kind of name: lower-case, like a plugin's name (``esphome``)."""
RESERVED_KINDS: Final = frozenset({"node", "group"})
"""The keys of node and group manifests are HMACs of ``node:<id>`` and ``group:<name>``: a kind must differ."""
NAME: Final = re.compile(r"[^/\\\x00-\x1f\x7f]{1,64}")
"""A name: printable, no slashes (it is one path segment)."""


def valid(kind: str, name: str) -> bool:
    """Whether ``kind`` and ``name`` can name a manifest."""
    return bool(NAME_KIND.fullmatch(kind)) and kind not in RESERVED_KINDS and bool(NAME.fullmatch(name))


def attribute(kind: str) -> str:
    """The node attribute carrying names of ``kind``."""
    return f"{kind}_name"


def resolve(registry: NodeRegistry, kind: str, name: str) -> Node | None:
    """The node named ``name`` by ``kind``; when several carry it (a placeholder not yet folded into the node that
    connected), the one seen last, so the node that really speaks wins over one never seen."""
    key = attribute(kind)
    found: Node | None = None
    for node in registry:
        if node.attributes.get(key) != name:
            continue
        if found is None or _rank(node) > _rank(found):
            found = node
    return found


def _rank(node: Node) -> tuple[float, str]:
    return (node.last_seen if node.last_seen is not None else float("-inf"), node.node_id)
