"""A real (if tiny) installed distribution with ``hub`` entry points, built in tmp_path for plugin tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

GOOD = '''
"""A well-behaved third-party plugin."""
import hub

@hub.hookimpl
def hub_setup(hub):
    hub.data["tinyplugin.setup"] = True

@hub.hookimpl
def hub_start(hub):
    hub.data["tinyplugin.started"] = True
'''

BROKEN_IMPORT = '''
"""A plugin whose import fails (a missing dependency)."""
import hub_dependency_that_is_not_installed  # noqa: F401
'''

BAD_HOOK = '''
"""A plugin whose hook asks for an argument no hookspec offers."""
import hub

@hub.hookimpl
def hub_setup(hub, frobnicator):
    pass
'''

SETUP_FAILS = '''
"""A plugin that imports fine and fails in hub_setup."""
import hub

@hub.hookimpl
def hub_setup(hub):
    raise RuntimeError("cannot reach the cloud")

@hub.hookimpl
def hub_start(hub):
    hub.data["tinyfail.started"] = True
'''

IMPOSTOR = '''
"""An installed plugin that claims a built-in's name."""
import hub

@hub.hookimpl
def hub_setup(hub):
    hub.data["impostor"] = True
'''

ENTRY_POINTS = {
    "presence": "tinyplugins.impostor",
    "tinygood": "tinyplugins.good",
    "tinybroken": "tinyplugins.broken",
    "tinybadhook": "tinyplugins.badhook",
    "tinysetupfails": "tinyplugins.setupfails",
    "tinymissingattr": "tinyplugins.good:no_such_object",
}


@pytest.fixture
def tiny_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install ``tiny-hub-plugins`` 1.2.3 (a package plus its .dist-info) on sys.path; returns the folder.

    importlib.metadata finds it exactly as it finds a pip-installed distribution.
    """
    site = tmp_path / "site"
    package = site / "tinyplugins"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name, source in (
        ("good", GOOD),
        ("broken", BROKEN_IMPORT),
        ("badhook", BAD_HOOK),
        ("setupfails", SETUP_FAILS),
        ("impostor", IMPOSTOR),
    ):
        (package / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / "tiny_hub_plugins-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-hub-plugins\nVersion: 1.2.3\n")
    lines = "\n".join(f"{name} = {target}" for name, target in ENTRY_POINTS.items())
    (info / "entry_points.txt").write_text(f"[hub]\n{lines}\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("HUB_LOAD_PLUGINS", raising=False)
    return site
