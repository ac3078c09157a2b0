"""The order plugins are set up and started in (stopped in reverse), from their manifests.

A plugin comes after everything it ``requires`` and everything it lists in
``after`` that is loaded.  Ties are broken by name, so the order never depends
on how entry points happened to be discovered.  A cycle cannot be ordered: its
plugins are refused with the cycle spelled out (``a -> b -> a``), the rest are
ordered without them.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping

from .manifest import Manifest


def dependency_order(manifests: Mapping[str, Manifest]) -> tuple[list[str], dict[str, str]]:
    """``(order, refused)``: the plugins in set-up order, and plugin name -> reason for those in a cycle."""
    remaining = dict(manifests)
    refused: dict[str, str] = {}
    while True:
        graph = {
            name: {dep for dep in (*manifest.requires, *manifest.after) if dep in remaining}
            for name, manifest in sorted(remaining.items())
        }
        sorter = graphlib.TopologicalSorter(graph)
        try:
            sorter.prepare()
        except graphlib.CycleError as err:
            cycle = _readable_cycle(err.args[1])
            reason = "dependency cycle: " + " -> ".join(cycle)
            for name in cycle:
                refused[name] = reason
                remaining.pop(name, None)
            continue
        order: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())
            order.extend(ready)
            sorter.done(*ready)
        return order, refused


def _readable_cycle(nodes: list[str]) -> list[str]:
    """graphlib lists a cycle from dependency to dependent; read it as "needs", starting at the first name."""
    needs = list(reversed(nodes[:-1]))
    start = needs.index(min(needs))
    needs = needs[start:] + needs[:start]
    return [*needs, needs[0]]


def unmet_requirement(manifest: Manifest, loaded: Mapping[str, Manifest], failed: Mapping[str, str]) -> str | None:
    """Why ``manifest``'s plugin cannot be set up (a requirement missing or failed), or None if it can."""
    for dep in manifest.requires:
        if dep in failed:
            return f"requires {dep}, which failed: {failed[dep]}"
        if dep not in loaded:
            return f"requires {dep}, which is not loaded (not installed, or left out by HUB_LOAD_PLUGINS)"
    return None
