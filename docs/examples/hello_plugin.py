"""hello: a complete, minimal hub plugin (the example of docs/plugin-api.md, tested by
tests/core/test_docs_example_plugin.py).

It owns the ``hello:`` config section and a table, ``hello_greetings`` (created by
the revisions in ``hello_migrations/``), remembers the last ping each name
published on ``hello/<name>/ping``, and offers the service ``hello.greet``,
which records every greeting and says how many that name has had.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import voluptuous as vol

from hub import DATA_DATABASE, Database, Hub, Manifest, Rejections, hookimpl

_LOGGER = logging.getLogger(__name__)

MANIFEST = Manifest(name="hello", requires=("storage",), sections=("hello",))
"""Its name (the entry-point name), the plugin it cannot work without (its table lives in storage's
database), and the config section it owns."""

metadata = sa.MetaData()
greetings = sa.Table(
    "hello_greetings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False, index=True),
    sa.Column("ts", sa.Double, nullable=False),
)


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """``hello: {greeting: Hello}``: every key needs a default, the section may be left out."""
    return {"hello": vol.Schema({vol.Optional("greeting", default="Hello"): str})}


@hookimpl
def hub_db_migrations(register: Callable[..., None]) -> None:
    """Our table's revisions: storage runs them on SQLite or PostgreSQL before any plugin sets up."""
    register("hello", Path(__file__).with_name("hello_migrations"), metadata)


@hookimpl
def hub_setup(hub: Hub) -> None:
    """Subscribe and register the service; nothing connects here, so this works in every role."""
    greeting = hub.config["hello"]["greeting"]
    database: Database = hub.data[DATA_DATABASE]  # storage sets up first; without it, this plugin fails to set up
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
        name = data["name"]
        message = f"{greeting}, {name}!"
        if data["publish"]:
            await hub.messages.publish(f"hello/{name}/greeting", message)
        async with database.begin() as conn:  # one transaction: commits when the block ends
            await conn.execute(greetings.insert().values(name=name, ts=hub.clock()))
            count = await conn.scalar(sa.select(sa.func.count()).where(greetings.c.name == name))
        return {"message": message, "last_ping": last_ping.get(name), "greeted": count}

    hub.messages.subscribe("hello/+/ping", on_ping)
    schema = {vol.Required("name"): vol.Match(r"^[^/+#]+$"), vol.Optional("publish", default=False): bool}
    hub.services.register("hello", "greet", greet, schema)
