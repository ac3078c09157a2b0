"""Built-in rabbitmq: the hub on RabbitMQ, for fleets that outgrow one process (aio-pika).

Off unless ``rabbitmq: url:`` is set.  When set, RabbitMQ is the hub's
transport instead of MQTT: nodes keep speaking MQTT 3.1.1, to RabbitMQ's MQTT
plugin, which publishes ``devices/{MAC}/data`` on ``amq.topic`` with routing
key ``devices.{MAC}.data``; the hub consumes durable quorum queues bound there
(:mod:`.topology`), so any number of ``hub run --role worker`` processes, on
any machines, share the load as competing consumers; and commands go back
through ``amq.topic`` with publisher confirms to the nodes' MQTT
subscriptions (:mod:`.transport`).  The ``mqtt`` and ``broker`` plugins stand
aside (``hub.messages.has_transport``).

Every process also joins the event fan-out (:mod:`.fanout`): what a worker's
registry changes reaches every API instance's registry and WebSocket clients.

The options are documented on :data:`.config.CONFIG_SCHEMA`; the design (shared
state, who marks nodes offline) in docs/architecture.md.
"""

from __future__ import annotations

from typing import Any

from hub import Hub, HubKey, Manifest, hookimpl

from .config import CONFIG_SCHEMA
from .fanout import EventFanout
from .transport import RabbitTransport

MANIFEST = Manifest(name="rabbitmq", after=("storage",), sections=("rabbitmq",))
"""After storage: the registry is restored before messages or fanned-out events arrive."""

DATA_RABBITMQ: HubKey[RabbitTransport] = HubKey("rabbitmq.transport")
"""Key of the running :class:`RabbitTransport` in ``hub.data``."""
DATA_EVENTS: HubKey[EventFanout] = HubKey("rabbitmq.events")
"""Key of this process's :class:`EventFanout` in ``hub.data``."""


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """The ``rabbitmq:`` section."""
    return {"rabbitmq": CONFIG_SCHEMA}


@hookimpl
def hub_setup(hub: Hub) -> None:
    """Attach as the transport (with ``url`` set), so mqtt and the embedded broker stand aside."""
    config = hub.config["rabbitmq"]
    if config.get("url") and (hub.role.takes_input or hub.role.serves_http):
        transport = hub.data[DATA_RABBITMQ] = RabbitTransport(hub, config)
        fanout = hub.data[DATA_EVENTS] = EventFanout(hub, config)
        transport.on_connected(fanout.connected)
        transport.forward_answer = fanout.forward_answer


@hookimpl
async def hub_start(hub: Hub) -> None:
    """Connect, declare the topology and (in roles that take input) consume."""
    transport = hub.data.get(DATA_RABBITMQ)
    if transport is not None:
        await transport.start()
        hub.data[DATA_EVENTS].start()


@hookimpl
async def hub_stop(hub: Hub) -> None:
    """Publish the last gathered events; stop consuming; in-flight messages get their commit and ack (bounded by ``stop_timeout``); disconnect."""
    fanout = hub.data.pop(DATA_EVENTS, None)
    if fanout is not None:
        await fanout.stop()
    transport = hub.data.pop(DATA_RABBITMQ, None)
    if transport is not None:
        await transport.stop()
