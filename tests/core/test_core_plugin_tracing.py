"""HUB_TRACE_PLUGINS=1: every hook call logged with its plugin and duration, failures still isolated."""

from __future__ import annotations

import logging
import re

from hub import Manifest, hookimpl
from hub.core.hub import HubState

TRACE_LOGGER = "hub.core.plugins.trace"
LINE = re.compile(r"^(hub_\w+) (\w+) (\d+\.\d{3}) ms( \(raised\))?$")


class Fine:
    MANIFEST = Manifest(name="fine", sections=("fine",))

    @hookimpl
    def hub_config_schema(self):
        return {"fine": {}}

    @hookimpl
    async def hub_setup(self, hub):
        hub.data["fine.setup"] = True

    @hookimpl
    def hub_stop(self):
        pass


class Flaky:
    MANIFEST = Manifest(name="flaky")

    @hookimpl
    def hub_setup(self):
        pass

    @hookimpl
    def hub_start(self):
        raise RuntimeError("flaky start")


class Page:
    MANIFEST = Manifest(name="page", requires=("http",))

    @hookimpl
    def hub_http_routes(self, register):
        pass


def traced(caplog) -> list[tuple[str, str, bool]]:
    calls = []
    for record in caplog.records:
        if record.name == TRACE_LOGGER:
            match = LINE.match(record.getMessage())
            assert match, record.getMessage()
            calls.append((match[1], match[2], bool(match[4])))
    return calls


async def test_every_hook_call_is_traced_with_its_plugin_and_duration(hub_factory, monkeypatch, caplog):
    monkeypatch.setenv("HUB_TRACE_PLUGINS", "1")
    with caplog.at_level(logging.INFO, logger=TRACE_LOGGER):
        hub = await hub_factory(builtins=(), plugins=[(Fine(), "fine"), (Flaky(), "flaky")])
        await hub.async_stop()
    assert traced(caplog) == [
        ("hub_config_schema", "fine", False),
        ("hub_setup", "fine", False),
        ("hub_setup", "flaky", False),
        ("hub_start", "flaky", True),
        ("hub_stop", "fine", False),
    ]
    # Isolation holds while tracing: the failing plugin is dropped, the hub ran on.
    assert hub.state is HubState.STOPPED and "flaky start" in hub.plugins.failed["flaky"]
    assert hub.data["fine.setup"]


async def test_nested_hook_calls_of_the_builtins_are_traced_too(hub_factory, monkeypatch, caplog):
    """http calls hub_http_routes and hub_http_static from its own hub_start: those go through the manager too."""
    monkeypatch.setenv("HUB_TRACE_PLUGINS", "1")
    with caplog.at_level(logging.INFO, logger=TRACE_LOGGER):
        await hub_factory({"http": {"port": 0}}, builtins=("hub.plugins.http",), plugins=[(Page(), "page")])
    assert traced(caplog) == [
        ("hub_config_schema", "http", False),
        ("hub_http_routes", "page", False),  # inside http's hub_start, so logged before it ends
        ("hub_start", "http", False),
    ]


async def test_no_trace_unless_asked(hub_factory, monkeypatch, caplog):
    monkeypatch.delenv("HUB_TRACE_PLUGINS", raising=False)
    with caplog.at_level(logging.INFO, logger=TRACE_LOGGER):
        await hub_factory(builtins=(), plugins=[(Fine(), "fine")])
    assert traced(caplog) == []
