"""PluginManager: built-ins, entry points from an installed distribution, the allow-list, isolation."""

from __future__ import annotations

import logging

import pytest

from hub.core.hub import HubState
from hub.core.plugins.hookspecs import hookimpl
from hub.core.plugins.manager import BUILTIN_PLUGINS, PluginManager

TINY = {"tinygood", "tinybroken", "tinybadhook", "tinysetupfails", "tinymissingattr"}


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


def test_registering_the_same_plugin_object_twice_is_isolated(caplog):
    """pluggy refuses a second registration of one object; that must not crash the loader."""
    manager = load(("hub.plugins.presence",), entry_points=False)
    with caplog.at_level(logging.ERROR):
        manager._load_module("presence_again", "hub.plugins.presence", "0", "builtin")
    assert "presence_again" in manager.failed
    assert "presence" in manager.info


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
    assert "presence" in hub.data  # the built-ins set up too
    assert "Plugin tinysetupfails disabled: hub_setup raised RuntimeError" in caplog.text


async def test_direct_plugins_sync_and_async_hooks_and_order(hub_factory):
    calls: list[str] = []

    class First:
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
        @hookimpl
        async def hub_setup(self, hub):
            calls.append("second.setup")

        @hookimpl
        def hub_shutdown(self, hub):
            calls.append("second.shutdown")

    hub = await hub_factory(builtins=(), plugins=[(First(), "first"), (Second(), "second")])
    await hub.async_stop()
    # Last registered first, every phase finished before the next begins.
    assert calls == ["second.setup", "first.setup", "first.start", "first.stop", "second.shutdown", "first.shutdown"]
    assert hub.plugins.info["first"].hooks == ["hub_setup", "hub_shutdown", "hub_start", "hub_stop"]


async def test_failing_stop_hook_does_not_prevent_the_others(hub_factory):
    calls: list[str] = []

    class Bad:
        @hookimpl
        def hub_stop(self):
            raise RuntimeError("stuck")

    class Good:
        @hookimpl
        def hub_shutdown(self):
            calls.append("good.shutdown")

    hub = await hub_factory(builtins=(), plugins=[(Good(), "good"), (Bad(), "bad")])
    await hub.async_stop()
    assert calls == ["good.shutdown"]
    assert hub.state is HubState.STOPPED and "bad" in hub.plugins.failed


def test_call_sync_isolates_and_collects_results():
    class Schema:
        @hookimpl
        def hub_config_schema(self):
            return {"thing": {}}

    class Broken:
        @hookimpl
        def hub_config_schema(self):
            raise ValueError("nope")

    manager = PluginManager()
    manager.register(Schema(), "schema")
    manager.register(Broken(), "broken")
    assert manager.call_sync("hub_config_schema") == [("schema", {"thing": {}})]
    assert "broken" in manager.failed and "broken" not in manager.info
    assert manager.call_sync("hub_config_schema") == [("schema", {"thing": {}})]  # not called again
