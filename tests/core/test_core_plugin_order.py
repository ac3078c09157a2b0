"""Dependency order from manifests: set-up and start in order, stop in reverse; cycles, missing and failed requirements."""

from __future__ import annotations

import json
import logging

from hub import Manifest, hookimpl
from hub.core.cli import main
from hub.core.hub import HubState
from hub.core.plugins.discovery import BUILTIN_PLUGINS
from hub.core.plugins.manager import PluginManager
from hub.core.plugins.ordering import dependency_order


class Recording:
    """A plugin that records each lifecycle hook in a shared list, with the manifest given."""

    def __init__(self, calls: list[str], manifest: Manifest, *, fail_in: str | None = None) -> None:
        self.calls = calls
        self.MANIFEST = manifest
        self.fail_in = fail_in

    def _record(self, hook: str) -> None:
        self.calls.append(f"{self.MANIFEST.name}.{hook}")
        if hook == self.fail_in:
            raise RuntimeError(f"{self.MANIFEST.name} broke in {hook}")

    @hookimpl
    def hub_setup(self):
        self._record("setup")

    @hookimpl
    def hub_start(self):
        self._record("start")

    @hookimpl
    def hub_stop(self):
        self._record("stop")

    @hookimpl
    def hub_shutdown(self):
        self._record("shutdown")


def plugins(calls: list[str], *manifests: Manifest, fail_in: dict[str, str] | None = None):
    return [(Recording(calls, m, fail_in=(fail_in or {}).get(m.name)), m.name) for m in manifests]


def phase(calls: list[str], hook: str) -> list[str]:
    return [call.split(".")[0] for call in calls if call.endswith(f".{hook}")]


def test_order_follows_requires_and_after_with_ties_by_name():
    manifests = {
        m.name: m
        for m in (
            Manifest(name="zeta"),
            Manifest(name="web", requires=("api",)),
            Manifest(name="api", after=("store", "not_loaded")),
            Manifest(name="store"),
            Manifest(name="alpha"),
        )
    }
    assert dependency_order(manifests) == (["alpha", "store", "zeta", "api", "web"], {})


def test_a_cycle_is_named_from_its_first_plugin():
    manifests = {
        m.name: m
        for m in (
            Manifest(name="c", after=("a",)),
            Manifest(name="a", requires=("b",)),
            Manifest(name="b", requires=("c",)),
            Manifest(name="d", requires=("d",)),
            Manifest(name="e"),
        )
    }
    order, refused = dependency_order(manifests)
    assert order == ["e"]
    assert refused == {
        "a": "dependency cycle: a -> b -> c -> a",
        "b": "dependency cycle: a -> b -> c -> a",
        "c": "dependency cycle: a -> b -> c -> a",
        "d": "dependency cycle: d -> d",
    }


async def test_setup_and_start_in_dependency_order_stop_and_shutdown_in_reverse(hub_factory):
    calls: list[str] = []
    registered = plugins(
        calls,
        Manifest(name="dash", requires=("web",)),
        Manifest(name="web", after=("store",)),
        Manifest(name="store"),
        Manifest(name="extra"),
    )
    hub = await hub_factory(builtins=(), plugins=registered)
    await hub.async_stop()
    assert hub.plugins.failed == {}
    for hook in ("setup", "start"):
        assert phase(calls, hook) == ["extra", "store", "web", "dash"]
    for hook in ("stop", "shutdown"):
        assert phase(calls, hook) == ["dash", "web", "store", "extra"]


async def test_a_cycle_is_refused_and_the_rest_runs(hub_factory, caplog):
    calls: list[str] = []
    registered = plugins(
        calls,
        Manifest(name="a", requires=("b",)),
        Manifest(name="b", after=("a",)),
        Manifest(name="needs_a", requires=("a",)),
        Manifest(name="fine"),
    )
    with caplog.at_level(logging.ERROR):
        hub = await hub_factory(builtins=(), plugins=registered)
    assert hub.state is HubState.RUNNING
    assert hub.plugins.failed == {
        "a": "dependency cycle: a -> b -> a",
        "b": "dependency cycle: a -> b -> a",
        "needs_a": "requires a, which failed: dependency cycle: a -> b -> a",
    }
    assert calls == ["fine.setup", "fine.start"]
    assert "Plugin a disabled: dependency cycle: a -> b -> a" in caplog.text


async def test_a_missing_requirement_is_not_set_up_and_listed(hub_factory):
    calls: list[str] = []
    registered = plugins(calls, Manifest(name="pages", requires=("http",)), Manifest(name="other", after=("http",)))
    hub = await hub_factory(builtins=(), plugins=registered)
    assert hub.plugins.failed == {
        "pages": "requires http, which is not loaded (not installed, or left out by HUB_LOAD_PLUGINS)"
    }
    assert calls == ["other.setup", "other.start"]  # `after` of something absent is no requirement


async def test_a_requirement_that_failed_to_load_is_named_with_its_reason(hub_factory):
    calls: list[str] = []
    registered = plugins(calls, Manifest(name="needy", requires=("no_such_builtin",)))
    hub = await hub_factory(builtins=("hub.plugins.no_such_builtin",), plugins=registered)
    assert hub.plugins.failed["needy"].startswith("requires no_such_builtin, which failed: failed to load: ")
    assert "ModuleNotFoundError" in hub.plugins.failed["needy"]
    assert calls == []


async def test_a_requirement_that_fails_in_setup_stops_its_dependents_before_they_set_up(hub_factory):
    calls: list[str] = []
    registered = plugins(
        calls,
        Manifest(name="base"),
        Manifest(name="mid", requires=("base",)),
        Manifest(name="top", requires=("mid",)),
        Manifest(name="side", after=("base",)),
        fail_in={"base": "setup"},
    )
    hub = await hub_factory(builtins=(), plugins=registered)
    await hub.async_stop()
    assert hub.plugins.failed["base"] == "hub_setup raised RuntimeError('base broke in setup')"
    assert (
        hub.plugins.failed["mid"] == "requires base, which failed: hub_setup raised RuntimeError('base broke in setup')"
    )
    assert hub.plugins.failed["top"].startswith("requires mid, which failed: requires base, which failed: ")
    assert calls == ["base.setup", "side.setup", "side.start", "side.stop", "side.shutdown"]


async def test_a_requirement_failing_at_stop_still_lets_its_dependents_shut_down(hub_factory):
    """What was started must be able to close: teardown does not drop dependents."""
    calls: list[str] = []
    registered = plugins(
        calls, Manifest(name="base"), Manifest(name="user", requires=("base",)), fail_in={"base": "stop"}
    )
    hub = await hub_factory(builtins=(), plugins=registered)
    await hub.async_stop()
    assert calls[4:] == ["user.stop", "base.stop", "user.shutdown"]
    assert set(hub.plugins.failed) == {"base"}


def test_the_builtins_and_first_party_plugins_are_ordered_by_their_manifests():
    manager = PluginManager()
    manager.load(BUILTIN_PLUGINS, entry_point_plugins=False)
    import hub_dashboard.plugin
    import hub_esp32_node.plugin

    manager.register(hub_esp32_node.plugin, "esp32_node")
    manager.register(hub_dashboard.plugin, "dashboard")
    order = manager.order
    assert manager.failed == {}

    def before(a: str, b: str) -> bool:
        return order.index(a) < order.index(b)

    assert before("broker", "mqtt")  # the embedded broker listens before the client connects
    assert before("storage", "presence") and before("mqtt", "presence")
    assert before("mqtt", "esp32_node")  # demo nodes stop while the transport still listens
    assert before("http", "dashboard")


def test_hub_plugins_lists_a_plugin_whose_requirement_is_missing(tiny_distribution, monkeypatch, capsys):
    monkeypatch.setenv("HUB_LOAD_PLUGINS", "tinydependent")
    assert main(["plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    reason = "requires tinysetupfails, which is not loaded (not installed, or left out by HUB_LOAD_PLUGINS)"
    assert listing["failed"] == {"tinydependent": reason}
    # set-up order: http after storage
    assert [row["name"] for row in listing["loaded"]][:3] == ["broker", "storage", "http"]
    assert main(["plugins"]) == 0
    assert f"tinydependent  FAILED     {reason}" in capsys.readouterr().out.splitlines()


async def test_an_installed_plugin_whose_requirement_fails_in_setup_is_not_set_up(
    tiny_distribution, hub_factory, monkeypatch
):
    monkeypatch.setenv("HUB_LOAD_PLUGINS", "tinysetupfails,tinydependent")
    hub = await hub_factory(builtins=(), entry_points=True)
    assert hub.plugins.failed["tinydependent"] == (
        "requires tinysetupfails, which failed: hub_setup raised RuntimeError('cannot reach the cloud')"
    )
    assert "tinydependent.setup" not in hub.data
