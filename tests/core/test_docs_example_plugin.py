"""docs/examples/hello_plugin.py does what docs/plugin-api.md says it does, so the documentation cannot rot.

The plugin owns a table, so every hub here loads storage (SQLite in the test's tmp_path unless told otherwise).
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import uuid
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from hub.core.errors import ConfigError, HubStateError, ServiceValidationError
from hub.testing import wait_until

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLE = DOCS / "examples" / "hello_plugin.py"
MIGRATION = DOCS / "examples" / "hello_migrations" / "0001_greetings.py"
STORAGE = ("hub.plugins.storage",)
OWN_TABLES = {"include_name": lambda name, type_, parents: type_ != "table" or name.startswith("hello_")}


@pytest.fixture(scope="module")
def hello() -> ModuleType:
    """The example module, loaded from its file as the docs show it (it is not an installed package)."""
    spec = importlib.util.spec_from_file_location("hello_plugin", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_listings_in_plugin_api_md_are_these_files():
    listing = (DOCS / "plugin-api.md").read_text().split("## A complete example", 1)[1]
    plugin, migration = (block.split("```", 1)[0] for block in listing.split("```python\n")[1:3])
    assert plugin == EXAMPLE.read_text()
    assert migration == MIGRATION.read_text()


async def test_pings_are_remembered_and_greet_answers(hub_factory, hello):
    hub = await hub_factory({"hello": {"greeting": "Hi"}}, builtins=STORAGE, plugins=[(hello, "hello")])
    assert hub.plugins.info["hello"].hooks == ["hub_config_schema", "hub_db_migrations", "hub_setup"]
    assert hub.messages.filters() == {"hello/+/ping": 1}

    assert hub.messages.dispatch("hello/kitchen/ping", b"21.5") == 1
    assert hub.messages.dispatch("hello/kitchen/pong", b"ignored") == 0

    assert await hub.services.call("hello", "greet", {"name": "kitchen"}) == {
        "message": "Hi, kitchen!",
        "last_ping": "21.5",
        "greeted": 1,
    }
    assert await hub.services.call("hello", "greet", {"name": "cellar"}) == {
        "message": "Hi, cellar!",
        "last_ping": None,
        "greeted": 1,
    }
    assert (await hub.services.call("hello", "greet", {"name": "kitchen"}))["greeted"] == 2
    assert hub.metrics.value("hello_pings") == 1


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_greetings_are_kept_in_its_own_table_across_restarts(hub_factory, hello, dialect, request, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'hub.db'}" if dialect == "sqlite" else request.getfixturevalue("hub_postgres_url")
    config = {"storage": {"db_url": db_url}}
    hub = await hub_factory(config, builtins=STORAGE, plugins=[(hello, "hello")])
    assert (await hub.services.call("hello", "greet", {"name": "kitchen"}))["greeted"] == 1
    await hub.async_stop()

    hub = await hub_factory(config, builtins=STORAGE, plugins=[(hello, "hello")])
    assert (await hub.services.call("hello", "greet", {"name": "kitchen"}))["greeted"] == 2

    engine = create_async_engine(sa.make_url(hub.config["storage"]["db_url"]))
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts=OWN_TABLES), hello.metadata)
            )
    finally:
        await engine.dispose()
    assert differences == []  # its migration builds exactly the table the plugin declares


async def test_without_storage_it_fails_to_set_up_and_the_hub_runs_on(hub_factory, hello):
    hub = await hub_factory(builtins=(), plugins=[(hello, "hello")])
    assert "hello" in hub.plugins.failed
    assert not hub.services.has("hello", "greet")


async def test_bad_input_is_counted_or_refused_never_raised_into_the_transport(hub_factory, hello):
    hub = await hub_factory(builtins=STORAGE, plugins=[(hello, "hello")])
    assert hub.messages.dispatch("hello/kitchen/ping", b"\xff\xfe") == 1
    assert hub.messages.handler_errors == 0
    assert hub.metrics.value("messages_rejected", reason="hello_not_utf8") == 1
    assert hub.metrics.value("hello_pings") == 0

    for bad in ({}, {"name": "a/b"}, {"name": "kitchen", "colour": "red"}):
        with pytest.raises(ServiceValidationError):
            await hub.services.call("hello", "greet", bad)
    greeting = await hub.services.call("hello", "greet", {"name": "kitchen"})
    assert greeting["message"] == "Hello, kitchen!"  # the section was left out: its defaults apply


async def test_publishing_needs_a_transport(hub_factory, hello):
    hub = await hub_factory(builtins=STORAGE, plugins=[(hello, "hello")])
    with pytest.raises(HubStateError, match="no message transport"):
        await hub.services.call("hello", "greet", {"name": "kitchen", "publish": True})


async def test_its_config_section_is_validated_like_any_other(hub_factory, hello):
    with pytest.raises(ConfigError) as caught:
        await hub_factory({"hello": {"greting": "Hi"}}, builtins=STORAGE, plugins=[(hello, "hello")])
    assert caught.value.messages == ["config.yaml: hello: unknown key 'greting', did you mean 'greeting'?"]


async def test_over_the_real_broker(hub_factory, hello, hub_mqtt_url):
    """With the built-in mqtt transport: a node's ping reaches the service, the greeting reaches the node."""
    name = f"docs-{uuid.uuid4().hex[:10]}"
    mqtt = {"broker": hub_mqtt_url, "client_id": f"hub-{name}", "session_expiry": 60, "connect_timeout": 3}
    hub = await hub_factory({"mqtt": mqtt}, builtins=(*STORAGE, "hub.plugins.mqtt"), plugins=[(hello, "hello")])

    node = _PahoNode(hub_mqtt_url, f"node-{name}")
    await node.start(f"hello/{name}/greeting")
    try:

        async def pinged() -> bool:
            if (await hub.services.call("hello", "greet", {"name": name}))["last_ping"] == "up":
                return True
            await node.publish(f"hello/{name}/ping", "up")  # repeated: the hub's SUBSCRIBE may still be on its way
            return False

        await wait_until(pinged, message="the ping to reach the plugin", interval=0.2)

        reply = await hub.services.call("hello", "greet", {"name": name, "publish": True})
        assert (reply["message"], reply["last_ping"]) == (f"Hello, {name}!", "up")
        assert await asyncio.to_thread(node.received.wait, 5), "the greeting never reached the node"
        assert node.payloads == [f"Hello, {name}!".encode()]
    finally:
        await node.stop()


class _PahoNode:
    """A stand-in for a device: another MQTT library than the hub's, run in paho's own thread."""

    def __init__(self, url: str, client_id: str) -> None:
        self._url = url
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        self.payloads: list[bytes] = []
        self.received = threading.Event()
        self._subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        self.payloads.append(message.payload)
        self.received.set()

    async def start(self, topic_filter: str) -> None:
        parts = urlsplit(self._url)
        if parts.username:
            self.client.username_pw_set(parts.username, parts.password)
        await asyncio.to_thread(self.client.connect, parts.hostname, parts.port or 1883)
        self.client.loop_start()
        self.client.subscribe(topic_filter, qos=1)
        assert await asyncio.to_thread(self._subscribed.wait, 5), "no SUBACK"

    async def publish(self, topic: str, payload: str) -> None:
        info = self.client.publish(topic, payload, qos=1)
        await asyncio.to_thread(info.wait_for_publish, 5)

    async def stop(self) -> None:
        await asyncio.to_thread(self.client.disconnect)
        await asyncio.to_thread(self.client.loop_stop)
