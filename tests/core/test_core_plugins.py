"""PluginManager: built-ins, entry points from an installed distribution, the allow-list, isolation."""

from __future__ import annotations

import logging

import pytest

from hub import Manifest
from hub.core.errors import ManifestError
from hub.core.hub import HubState
from hub.core.plugins.hookspecs import hookimpl
from hub.core.plugins.manager import BUILTIN_PLUGINS, PluginManager
from hub.plugins.presence import DATA_PRESENCE

TINY = {
    "tinygood",
    "tinybroken",
    "tinybadhook",
    "tinysetupfails",
    "tinymissingattr",
    "tinynomanifest",
    "tinydependent",
}


def load(builtins=(), entry_points=True) -> PluginManager:
    manager = PluginManager()
    manager.load(builtins, entry_point_plugins=entry_points)
    return manager


def test_builtins_load_with_the_package_version():
    from hub import __version__

    manager = load(BUILTIN_PLUGINS, entry_points=False)
    assert set(manager.info) == {name.rsplit(".", 1)[-1] for name in BUILTIN_PLUGINS}
    presence = manager.info["presence"]
    assert (presence.version, presence.source) == (__version__, "builtin")
    assert "hub_setup" in presence.hooks and "hub_config_schema" in presence.hooks
    assert manager.failed == {}


def test_a_builtin_that_fails_to_import_is_reported_and_skipped(caplog):
    with caplog.at_level(logging.ERROR):
        manager = load(("hub.plugins.presence", "hub.plugins.no_such_builtin"), entry_points=False)
    assert set(manager.info) == {"presence"}
    assert "ModuleNotFoundError" in manager.failed["no_such_builtin"]
    assert "Plugin no_such_builtin disabled" in caplog.text


def test_entry_points_from_an_installed_distribution(tiny_distribution, caplog):
    with caplog.at_level(logging.ERROR):
        manager = load()
    good = manager.info["tinygood"]
    assert (good.version, good.source, good.hooks) == ("1.2.3", "tiny-hub-plugins", ["hub_setup", "hub_start"])
    assert "tinysetupfails" in manager.info  # fails only later, in hub_setup
    # Each broken one is reported with why, and the others still load.
    assert "hub_dependency_that_is_not_installed" in manager.failed["tinybroken"]
    assert "frobnicator" in manager.failed["tinybadhook"]
    assert "no_such_object" in manager.failed["tinymissingattr"]
    assert not {"tinybroken", "tinybadhook", "tinymissingattr"} & set(manager.info)
    for name in ("tinybroken", "tinybadhook", "tinymissingattr"):
        assert f"Plugin {name} disabled" in caplog.text


@pytest.mark.parametrize(
    ("allow", "expected"),
    [
        ("tinygood", {"tinygood"}),
        (" tinygood , tinysetupfails ,", {"tinygood", "tinysetupfails"}),
        ("", set()),
        ("somethingelse", set()),
    ],
)
def test_allow_list(tiny_distribution, monkeypatch, allow, expected):
    monkeypatch.setenv("HUB_LOAD_PLUGINS", allow)
    manager = load(("hub.plugins.presence",))
    assert set(manager.info) & TINY == expected
    assert "presence" in manager.info  # the allow-list is for installed plugins, not built-ins
    assert not set(manager.failed) & (TINY - expected)  # not loaded at all, so not failed either


def test_unset_allow_list_loads_everything(tiny_distribution):
    manager = load()
    assert {"tinygood", "tinysetupfails"} <= set(manager.info)


async def test_entry_point_named_like_a_builtin_is_skipped(tiny_distribution, hub_factory, monkeypatch):
    monkeypatch.setenv("HUB_LOAD_PLUGINS", "presence,tinygood")
    hub = await hub_factory(builtins=("hub.plugins.presence",), entry_points=True)
    assert hub.plugins.info["presence"].source == "builtin"
    assert "impostor" not in hub.data and "presence" not in hub.plugins.failed


def test_a_plugin_registered_under_another_name_than_its_manifest_is_refused(caplog):
    import hub.plugins.presence

    manager = load(("hub.plugins.presence",), entry_points=False)
    with caplog.at_level(logging.ERROR):
        manager.register(hub.plugins.presence, "presence_again")
    assert "its manifest names it 'presence'" in manager.failed["presence_again"]
    assert "presence" in manager.info


def test_registering_a_taken_name_is_a_programming_error():
    manager = load(("hub.plugins.presence",), entry_points=False)
    with pytest.raises(ValueError, match="already registered"):
        manager.register(object(), "presence")


def test_a_plugin_without_a_manifest_is_refused_with_how_to_fix_it(tiny_distribution):
    manager = load()
    assert manager.failed["tinynomanifest"] == (
        "refused: declares no manifest: add MANIFEST = hub.Manifest(name='tinynomanifest', …) to the plugin module"
    )
    assert "tinynomanifest" not in manager.info


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "non-empty string"),
        ({"name": "x", "requires": "http"}, r"requires=\('http',\)"),
        ({"name": "x", "sections": ("ok", "")}, "tuple of non-empty names"),
        ({"name": "x", "version": 1}, "version must be a string"),
    ],
)
def test_a_malformed_manifest_says_what_is_wrong(kwargs, message):
    with pytest.raises(ManifestError, match=message):
        Manifest(**kwargs)


def test_a_manifest_that_is_not_a_manifest_is_refused():
    class Impostor:
        MANIFEST = ("impostor",)

    manager = PluginManager()
    manager.register(Impostor(), "impostor")
    assert manager.failed["impostor"] == "refused: its MANIFEST is a tuple, not a hub.Manifest"


def test_version_comes_from_the_distribution_unless_the_manifest_sets_one():
    import hub_esp32_node.plugin

    class Pinned:
        MANIFEST = Manifest(name="pinned", version="2.0")

    manager = PluginManager()
    manager.register(hub_esp32_node.plugin, "esp32_node")
    manager.register(Pinned(), "pinned")
    assert (manager.info["esp32_node"].version, manager.info["esp32_node"].source) == (
        hub_esp32_node.__version__,
        "hub-esp32-node",
    )
    assert (manager.info["pinned"].version, manager.info["pinned"].source) == ("2.0", "direct")


async def test_plugin_whose_setup_raises_is_dropped_and_the_hub_runs_on(
    tiny_distribution, hub_factory, caplog, monkeypatch
):
    monkeypatch.setenv("HUB_LOAD_PLUGINS", "tinygood,tinysetupfails")
    with caplog.at_level(logging.ERROR):
        hub = await hub_factory(builtins=("hub.plugins.presence",), entry_points=True)
    assert hub.state is HubState.RUNNING
    assert "cannot reach the cloud" in hub.plugins.failed["tinysetupfails"]
    assert "tinysetupfails" not in hub.plugins.info
    assert "tinyfail.started" not in hub.data  # a dropped plugin gets no further hooks
    assert hub.data["tinyplugin.setup"] and hub.data["tinyplugin.started"]
    assert DATA_PRESENCE in hub.data  # the built-ins set up too
    assert "Plugin tinysetupfails disabled: hub_setup raised RuntimeError" in caplog.text


async def test_direct_plugins_sync_and_async_hooks(hub_factory):
    calls: list[str] = []

    class First:
        MANIFEST = Manifest(name="first")

        @hookimpl
        def hub_setup(self, hub):
            calls.append("first.setup")

        @hookimpl
        async def hub_start(self, hub):
            calls.append("first.start")

        @hookimpl
        def hub_stop(self):
            calls.append("first.stop")

        @hookimpl
        async def hub_shutdown(self, hub):
            calls.append("first.shutdown")

    class Second:
        MANIFEST = Manifest(name="second", after=("first",))

        @hookimpl
        async def hub_setup(self, hub):
            calls.append("second.setup")

        @hookimpl
        def hub_shutdown(self, hub):
            calls.append("second.shutdown")

    hub = await hub_factory(builtins=(), plugins=[(Second(), "second"), (First(), "first")])
    await hub.async_stop()
    # Dependency order up, reverse order down, every phase finished before the next begins.
    assert calls == ["first.setup", "second.setup", "first.start", "first.stop", "second.shutdown", "first.shutdown"]
    assert hub.plugins.info["first"].hooks == ["hub_setup", "hub_shutdown", "hub_start", "hub_stop"]


async def test_failing_stop_hook_does_not_prevent_the_others(hub_factory):
    calls: list[str] = []

    class Bad:
        MANIFEST = Manifest(name="bad")

        @hookimpl
        def hub_stop(self):
            raise RuntimeError("stuck")

    class Good:
        MANIFEST = Manifest(name="good")

        @hookimpl
        def hub_shutdown(self):
            calls.append("good.shutdown")

    hub = await hub_factory(builtins=(), plugins=[(Good(), "good"), (Bad(), "bad")])
    await hub.async_stop()
    assert calls == ["good.shutdown"]
    assert hub.state is HubState.STOPPED and "bad" in hub.plugins.failed


def test_call_sync_isolates_and_collects_results():
    class Schema:
        MANIFEST = Manifest(name="schema", sections=("thing",))

        @hookimpl
        def hub_config_schema(self):
            return {"thing": {}}

    class Broken:
        MANIFEST = Manifest(name="broken")

        @hookimpl
        def hub_config_schema(self):
            raise ValueError("nope")

    manager = PluginManager()
    manager.register(Schema(), "schema")
    manager.register(Broken(), "broken")
    assert manager.call_sync("hub_config_schema") == [("schema", {"thing": {}})]
    assert "broken" in manager.failed and "broken" not in manager.info
    assert manager.call_sync("hub_config_schema") == [("schema", {"thing": {}})]  # not called again
