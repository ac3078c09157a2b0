"""hello: a complete, minimal hub plugin (the example of docs/plugin-api.md, tested by
tests/core/test_docs_example_plugin.py).

It owns the ``hello:`` config section, remembers the last ping each name
published on ``hello/<name>/ping``, and offers the service ``hello.greet``.
"""

from __future__ import annotations

import logging
from typing import Any

import voluptuous as vol

from hub import Hub, Manifest, Rejections, hookimpl

_LOGGER = logging.getLogger(__name__)

MANIFEST = Manifest(name="hello", sections=("hello",))
"""Its name (the entry-point name), and the config section it owns; it needs no other plugin."""


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """``hello: {greeting: Hello}``: every key needs a default, the section may be left out."""
    return {"hello": vol.Schema({vol.Optional("greeting", default="Hello"): str})}


@hookimpl
def hub_setup(hub: Hub) -> None:
    """Subscribe and register the service; nothing connects here, so this works in every role."""
    greeting = hub.config["hello"]["greeting"]
    last_ping: dict[str, str] = {}
    pings = hub.metrics.counter("hello_pings", "Pings received on hello/+/ping")
    rejections = Rejections(hub.metrics, _LOGGER)

    def on_ping(topic: str, payload: bytes, retained: bool) -> None:
        # On the ingest path: synchronous, no I/O; bad input is counted, never raised.
        try:
            last_ping[topic.split("/")[1]] = payload.decode()
        except UnicodeDecodeError:
            rejections.reject("hello_not_utf8", topic)
            return
        pings.inc()

    async def greet(data: dict[str, Any]) -> dict[str, Any]:
        """Greet ``name``; with ``publish: true`` also send the greeting to hello/<name>/greeting."""
        message = f"{greeting}, {data['name']}!"
        if data["publish"]:
            await hub.messages.publish(f"hello/{data['name']}/greeting", message)
        return {"message": message, "last_ping": last_ping.get(data["name"])}

    hub.messages.subscribe("hello/+/ping", on_ping)
    schema = {vol.Required("name"): vol.Match(r"^[^/+#]+$"), vol.Optional("publish", default=False): bool}
    hub.services.register("hello", "greet", greet, schema)
