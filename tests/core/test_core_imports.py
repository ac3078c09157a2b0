"""The import graph of hub/ and the first-party plugin packages: no cycles, and who may import whom.

Every module's imports are read with ``ast``, including those inside functions
(a lazy import is still a dependency); those under ``if TYPE_CHECKING:`` are
left out, as they never run.  ``import a.b.c`` is an edge to ``a.b.c`` and
``from a.b import c`` to ``a.b.c`` when that is a module, else to ``a.b``.
Parent packages, which Python initialises first, are not edges: every package
whose ``__init__`` imports its own modules would otherwise be a cycle.

Fails on (a) an import cycle, printed; (b) a hub/core module importing an
MQTT/SQL/HTTP library or anything under hub.plugins; (c) one plugin package
(each ``hub/plugins/<x>``, each ``plugins/<x>/<package>``) importing another
plugin package, or a built-in importing anything of hub/plugins outside its
own package; (d) product code importing hub.testing.  ``pytest -s`` prints the
graph's summary.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

IO_LIBRARIES = frozenset({"gmqtt", "sqlalchemy", "asyncpg", "aiosqlite", "aiohttp", "aio_pika", "amqtt"})


@dataclass
class ImportGraph:
    modules: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=dict)
    """Module -> the modules of this graph it imports."""
    external: dict[str, set[str]] = field(default_factory=dict)
    """Module -> the top-level names of what it imports from outside the graph."""

    @property
    def edge_count(self) -> int:
        return sum(len(targets) for targets in self.edges.values())


def _module_files() -> dict[str, Path]:
    """Module name -> file, for hub/ and every plugins/<x>/<package>/ (tests are not product code)."""
    found: dict[str, Path] = {}
    roots = [(ROOT, ROOT / "hub")] + [
        (package.parent, package)
        for package in sorted(ROOT.glob("plugins/*/*/"))
        if (package / "__init__.py").is_file() and package.name != "tests"
    ]
    for base, package in roots:
        for path in sorted(package.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except what sits under ``if TYPE_CHECKING:`` (its ``else:`` does run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imported(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: dict[str, Path]) -> set[str]:
    """The full names ``node`` imports, resolved against the graph's modules."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if node.level:
        package = module.split(".") if is_package else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    return {f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names}


def build_graph() -> ImportGraph:
    graph = ImportGraph(modules=_module_files())
    for module, path in graph.modules.items():
        targets: set[str] = set()
        external: set[str] = set()
        tree = ast.parse(path.read_text(), str(path))
        for node in _runtime_nodes(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for name in _imported(module, path.name == "__init__.py", node, graph.modules):
                owner = next(
                    (
                        name.rsplit(".", cut)[0]
                        for cut in range(name.count(".") + 1)
                        if name.rsplit(".", cut)[0] in graph.modules
                    ),
                    None,
                )
                if owner is None:
                    external.add(name.split(".")[0])
                elif owner != module:
                    targets.add(owner)
        graph.edges[module] = targets
        graph.external[module] = external
    return graph


def _cycles(graph: ImportGraph) -> list[list[str]]:
    """One concrete cycle for every group of modules that import each other (Tarjan's components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph.edges):
        if node not in index:
            visit(node)
    cycles = []
    for component in components:
        members = set(component)
        sub = {node: graph.edges[node] & members for node in component}
        try:
            graphlib.TopologicalSorter(sub).prepare()
        except graphlib.CycleError as err:
            cycles.append(list(reversed(err.args[1])))
    return cycles


def _plugin_package(module: str) -> str | None:
    """``hub.plugins.<x>`` or a first-party ``<package>`` the module belongs to; None for everything else."""
    parts = module.split(".")
    if parts[:2] == ["hub", "plugins"]:
        return ".".join(parts[:3]) if len(parts) > 2 else None
    return None if parts[0] == "hub" else parts[0]


def check(graph: ImportGraph) -> list[str]:
    problems = [f"import cycle: {' -> '.join(cycle)}" for cycle in _cycles(graph)]
    for module, targets in sorted(graph.edges.items()):
        if module.startswith("hub.core"):
            for library in sorted(graph.external[module] & IO_LIBRARIES):
                problems.append(f"{module} (core) imports {library}")
            for target in sorted(t for t in targets if t.startswith("hub.plugins")):
                problems.append(f"{module} (core) imports {target}")
        own = _plugin_package(module)
        if own is not None:
            for target in sorted(targets):
                other = _plugin_package(target)
                if (other is not None and other != own) or (target.startswith("hub.plugins") and other is None):
                    problems.append(f"{module} (plugin {own}) imports {target}")
        if not module.startswith("hub.testing"):
            for target in sorted(t for t in targets if t.startswith("hub.testing")):
                problems.append(f"{module} (product code) imports {target}")
    return problems


def test_the_import_graph_has_no_cycle_and_respects_the_layers():
    graph = build_graph()
    problems = check(graph)
    packages = sorted({p for p in map(_plugin_package, graph.modules) if p})
    print(
        f"\nimport graph: {len(graph.modules)} modules, {graph.edge_count} import edges between them "
        f"(function-level imports included, TYPE_CHECKING left out); plugin packages: {', '.join(packages)}"
    )
    print(
        "result: " + ("OK: no cycle, core free of I/O libraries and plugins, plugins isolated" if not problems else "")
    )
    for problem in problems:
        print(f"  {problem}")
    assert graph.modules.keys() >= {"hub", "hub.core.hub", "hub.plugins.storage", "hub_esp32_node.plugin"}
    assert problems == []


def _graph_of(sources: dict[str, str]) -> ImportGraph:
    """A graph from in-memory modules, to show each check catches what it should."""
    graph = ImportGraph(modules={name: Path(name) for name in sources})
    for module, source in sources.items():
        targets, external = set(), set()
        for node in _runtime_nodes(ast.parse(source)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for name in _imported(module, module in ("hub", "hub.plugins.a"), node, graph.modules):
                    (targets if name in graph.modules else external).add(
                        name if name in graph.modules else name.split(".")[0]
                    )
        graph.edges[module], graph.external[module] = targets - {module}, external
    return graph


def test_the_checks_catch_what_they_should():
    graph = _graph_of(
        {
            "hub": "from hub.core import hub",
            "hub.core.hub": "def lazy():\n    import hub\n",  # a function-level import is still a cycle
            "hub.core.net": "import aiohttp\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import gmqtt\n",
            "hub.plugins.a": "from . import b",
            "hub.plugins.a.b": "from hub.plugins.c import x\nfrom hub.testing import pytest_plugin",
            "hub.plugins.c": "",
            "hub.testing": "",
        }
    )
    assert check(graph) == [
        "import cycle: hub -> hub.core.hub -> hub",
        "hub.core.net (core) imports aiohttp",
        "hub.plugins.a.b (plugin hub.plugins.a) imports hub.plugins.c",
        "hub.plugins.a.b (product code) imports hub.testing",
    ]
