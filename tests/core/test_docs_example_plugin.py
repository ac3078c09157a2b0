"""docs/examples/hello_plugin.py does what docs/plugin-api.md says it does, so the documentation cannot rot."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
import uuid
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import pytest

from hub.core.errors import ConfigError, HubStateError, ServiceValidationError

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLE = DOCS / "examples" / "hello_plugin.py"


@pytest.fixture(scope="module")
def hello() -> ModuleType:
    """The example module, loaded from its file as the docs show it (it is not an installed package)."""
    spec = importlib.util.spec_from_file_location("hello_plugin", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_listing_in_plugin_api_md_is_this_file():
    listing = (DOCS / "plugin-api.md").read_text().split("## A complete example", 1)[1]
    code = listing.split("```python\n", 1)[1].split("```", 1)[0]
    assert code == EXAMPLE.read_text()


async def test_pings_are_remembered_and_greet_answers(hub_factory, hello):
    hub = await hub_factory({"hello": {"greeting": "Hi"}}, builtins=(), plugins=[(hello, "hello")])
    assert hub.plugins.info["hello"].hooks == ["hub_config_schema", "hub_setup"]
    assert hub.messages.filters() == {"hello/+/ping": 1}

    assert hub.messages.dispatch("hello/kitchen/ping", b"21.5") == 1
    assert hub.messages.dispatch("hello/kitchen/pong", b"ignored") == 0

    assert await hub.services.call("hello", "greet", {"name": "kitchen"}) == {
        "message": "Hi, kitchen!",
        "last_ping": "21.5",
    }
    assert await hub.services.call("hello", "greet", {"name": "cellar"}) == {
        "message": "Hi, cellar!",
        "last_ping": None,
    }
    assert hub.metrics.value("hello_pings") == 1


async def test_bad_input_is_counted_or_refused_never_raised_into_the_transport(hub_factory, hello):
    hub = await hub_factory(builtins=(), plugins=[(hello, "hello")])
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
    hub = await hub_factory(builtins=(), plugins=[(hello, "hello")])
    with pytest.raises(HubStateError, match="no message transport"):
        await hub.services.call("hello", "greet", {"name": "kitchen", "publish": True})


async def test_its_config_section_is_validated_like_any_other(hub_factory, hello):
    with pytest.raises(ConfigError) as caught:
        await hub_factory({"hello": {"greting": "Hi"}}, builtins=(), plugins=[(hello, "hello")])
    assert caught.value.messages == ["config.yaml: hello: unknown key 'greting', did you mean 'greeting'?"]


async def test_over_the_real_broker(hub_factory, hello, hub_mqtt_url):
    """With the built-in mqtt transport: a node's ping reaches the service, the greeting reaches the node."""
    name = f"docs-{uuid.uuid4().hex[:10]}"
    mqtt = {"broker": hub_mqtt_url, "client_id": f"hub-{name}", "session_expiry": 60, "connect_timeout": 3}
    hub = await hub_factory({"mqtt": mqtt}, builtins=("hub.plugins.mqtt",), plugins=[(hello, "hello")])

    node = _PahoNode(hub_mqtt_url, f"node-{name}")
    await node.start(f"hello/{name}/greeting")
    try:
        deadline = time.monotonic() + 10
        while (await hub.services.call("hello", "greet", {"name": name}))["last_ping"] != "up":
            assert time.monotonic() < deadline, "the ping never reached the plugin"
            await node.publish(f"hello/{name}/ping", "up")  # repeated: the hub's SUBSCRIBE may still be on its way
            await asyncio.sleep(0.2)

        reply = await hub.services.call("hello", "greet", {"name": name, "publish": True})
        assert reply == {"message": f"Hello, {name}!", "last_ping": "up"}
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
