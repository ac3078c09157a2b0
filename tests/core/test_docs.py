"""The plugin API documentation cannot drift from the code (in the spirit of datasette's tests/test_docs.py).

* Every hook spec is a row of the hooks table in docs/plugin-api.md.
* Every name in ``hub.__all__`` (the public API) is documented there, in backticks.
* Every ``hub.…`` the plugin docs name exists: a module or attribute reached from the
  ``hub`` package, or an attribute of a running :class:`~hub.Hub` (``hub.data``, ``hub.bus.fire``…).
* The plugin docs send authors to ``hub``, not into ``hub.core`` (the hook specs' module aside).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

import hub
from hub.core.plugins import hookspecs
from hub.testing import make_hub

REPO = Path(__file__).resolve().parents[2]
PLUGIN_API = REPO / "docs" / "plugin-api.md"
PLUGIN_DOCS = [PLUGIN_API, *sorted((REPO / "plugins").glob("*/README.md"))]

HOOKS = sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "hub_spec"))
DOTTED = re.compile(r"`hub((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def _doc(path: Path) -> str:
    """The document, without logger names (``the logger `hub.core.plugins.trace```), which are not Python names."""
    return re.sub(r"logger `[^`]*`", "logger", path.read_text(encoding="utf-8"))


def _documented_names(text: str) -> set[str]:
    """Names that appear in backticks, alone or as ``hub.NAME``, possibly followed by a call or subscript."""
    return set(re.findall(r"`(?:hub\.)?([A-Za-z_][A-Za-z0-9_]*)(?:[(\[.][^`]*)?`", text))


def test_the_hook_specs_are_found() -> None:
    assert {"hub_config_schema", "hub_setup", "hub_start", "hub_stop", "hub_shutdown"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_in_the_hooks_table(hook: str) -> None:
    assert re.search(rf"^\| `{hook}` \|", _doc(PLUGIN_API), re.M), (
        f"{hook} has no row in the hooks table of {PLUGIN_API}"
    )


@pytest.mark.parametrize("name", sorted(hub.__all__))
def test_every_public_name_is_documented(name: str) -> None:
    assert name in _documented_names(_doc(PLUGIN_API)), f"hub.{name} is in hub.__all__ but not in {PLUGIN_API}"


def test_every_public_name_exists() -> None:
    assert [name for name in hub.__all__ if not hasattr(hub, name)] == []
    assert len(set(hub.__all__)) == len(hub.__all__)


def _resolve(root: Any, parts: list[str]) -> bool:
    """Walk attributes (importing submodules of packages on the way); True when every part exists."""
    current, path = root, root.__name__ if hasattr(root, "__path__") else None
    for part in parts:
        if hasattr(current, part):
            current = getattr(current, part)
        elif path is not None:
            try:
                current = importlib.import_module(f"{path}.{part}")
            except ModuleNotFoundError:
                return False
        else:
            return False
        path = current.__name__ if hasattr(current, "__path__") else None
    return True


@pytest.fixture(scope="module")
def a_hub(tmp_path_factory: pytest.TempPathFactory) -> hub.Hub:
    """A hub as plugins see it (not started: its attributes exist from construction)."""
    return make_hub({"hub": {"data_dir": str(tmp_path_factory.mktemp("docs-hub"))}}, builtins=())


@pytest.mark.parametrize("doc", PLUGIN_DOCS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_documented_hub_name_exists(doc: Path, a_hub: hub.Hub) -> None:
    missing = sorted(
        {
            f"hub{dotted}"
            for dotted in DOTTED.findall(_doc(doc))
            if not (_resolve(hub, dotted.split(".")[1:]) or _resolve(a_hub, dotted.split(".")[1:]))
        }
    )
    assert missing == [], f"{doc.name} names what does not exist"


@pytest.mark.parametrize("doc", PLUGIN_DOCS, ids=lambda path: str(path.relative_to(REPO)))
def test_plugin_docs_point_at_the_public_api(doc: Path) -> None:
    internal = sorted(
        {f"hub{dotted}" for dotted in DOTTED.findall(_doc(doc)) if dotted.startswith(".core.")}
        - {"hub.core.plugins.hookspecs"}
    )
    assert internal == [], f"{doc.name} sends plugin authors into hub.core; name them through hub (hub.__all__)"


def test_the_checks_catch_drift(a_hub: hub.Hub) -> None:
    """The checks themselves: a made-up name fails, real ones of each kind pass."""
    assert not _resolve(hub, ["NoSuchThing"]) and not _resolve(a_hub, ["no_such_attribute"])
    assert _resolve(hub, ["testing", "clock", "FakeClock"]) and _resolve(a_hub, ["bus", "fire"])
    assert _resolve(hub, ["web", "NotFound"])
    assert "Hub" in _documented_names("see `hub.Hub` and `EventType[StateReportedData]`")
    assert "EventType" in _documented_names("see `hub.Hub` and `EventType[StateReportedData]`")
