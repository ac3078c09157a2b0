"""Real (if tiny) installed distributions with ``hub`` entry points, built in tmp_path for plugin tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

GOOD = '''
"""A well-behaved third-party plugin."""
import hub

MANIFEST = hub.Manifest(name="tinygood")

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

MANIFEST = hub.Manifest(name="tinybadhook")

@hub.hookimpl
def hub_setup(hub, frobnicator):
    pass
'''

SETUP_FAILS = '''
"""A plugin that imports fine and fails in hub_setup."""
import hub

MANIFEST = hub.Manifest(name="tinysetupfails")

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

MANIFEST = hub.Manifest(name="presence")

@hub.hookimpl
def hub_setup(hub):
    hub.data["impostor"] = True
'''

NO_MANIFEST = '''
"""A plugin that does not say what it is."""
import hub

@hub.hookimpl
def hub_setup(hub):
    hub.data["tinynomanifest.setup"] = True
'''

DEPENDENT = '''
"""A plugin that cannot work without tinysetupfails."""
import hub

MANIFEST = hub.Manifest(name="tinydependent", requires=("tinysetupfails",))

@hub.hookimpl
def hub_setup(hub):
    hub.data["tinydependent.setup"] = True
'''

ENTRY_POINTS = {
    "presence": "tinyplugins.impostor",
    "tinygood": "tinyplugins.good",
    "tinybroken": "tinyplugins.broken",
    "tinybadhook": "tinyplugins.badhook",
    "tinysetupfails": "tinyplugins.setupfails",
    "tinymissingattr": "tinyplugins.good:no_such_object",
    "tinynomanifest": "tinyplugins.nomanifest",
    "tinydependent": "tinyplugins.dependent",
}


InstallDistribution = Callable[[str, str, str, dict[str, str], dict[str, str]], Path]


@pytest.fixture
def install_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InstallDistribution:
    """Factory: ``install_distribution(dist, version, package, {module: source}, {entry point: target})``.

    Writes the package and its .dist-info on a folder put on sys.path: importlib.metadata finds it
    exactly as it finds a pip-installed distribution.  Returns the folder.
    """
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("HUB_LOAD_PLUGINS", raising=False)

    def install(dist: str, version: str, package: str, modules: dict[str, str], entry_points: dict[str, str]) -> Path:
        (site / package).mkdir(parents=True)
        (site / package / "__init__.py").write_text("")
        for name, source in modules.items():
            (site / package / f"{name}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[hub]\n{lines}\n")
        return site

    return install


@pytest.fixture
def tiny_distribution(install_distribution: InstallDistribution) -> Path:
    """``tiny-hub-plugins`` 1.2.3: well-behaved, broken and refused plugins, installed on sys.path."""
    modules = {
        "good": GOOD,
        "broken": BROKEN_IMPORT,
        "badhook": BAD_HOOK,
        "setupfails": SETUP_FAILS,
        "impostor": IMPOSTOR,
        "nomanifest": NO_MANIFEST,
        "dependent": DEPENDENT,
    }
    return install_distribution("tiny-hub-plugins", "1.2.3", "tinyplugins", modules, ENTRY_POINTS)
