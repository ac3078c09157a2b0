"""Built-in mqtt: the hub's MQTT transport (gmqtt), attached to ``hub.messages``.

It connects to ``mqtt: broker:`` (Mosquitto, EMQX, RabbitMQ's MQTT plugin) or,
when that is not set, to the embedded broker the ``broker`` plugin started
(its URL is in ``hub.data[DATA_BROKER_URL]``).  The options are documented on
:data:`.config.CONFIG_SCHEMA`.

What it guarantees, and what that needs:

* **A persistent session.**  ``clean_session`` is off (MQTT 5: clean start off
  plus ``session_expiry``) and the client id is stable (``hub-<hub.name>``), so
  the broker keeps the hub's subscriptions and queues QoS 1 messages while the
  hub is down, and delivers them when it returns.
* **PUBACK after commit.**  Each message is dispatched, then its handler awaits
  ``hub.durability.barrier()`` (the open storage batch) before gmqtt sends the
  PUBACK; a message whose batch did not commit is never acknowledged and the
  broker redelivers it.  See :mod:`.client` for how gmqtt does this and where
  it had to be adjusted, and :data:`.config.DEFAULT_RECEIVE_MAXIMUM` for why
  the in-flight window is large.
* **Each message once.**  The broker gets a non-overlapping cover of the
  router's filters (:mod:`.filters`), since Mosquitto sends one copy per
  matching subscription.
* **The embedded broker speaks MQTT 3.1.1 only** (amqtt), so the hub uses 3.1.1
  there.  Acknowledgement still waits for the commit, but amqtt keeps sessions
  in memory, inside the hub process: messages published while the hub is down
  are not kept.  That, and throughput, is why real deployments use Mosquitto.

The transport is ``hub.data[DATA_MQTT]`` (an :class:`~.transport.MqttTransport`).
Logs never contain the broker's credentials: only ``mqtt[s]://host:port``.
"""

from __future__ import annotations

import logging
from typing import Any

from hub import DATA_BROKER_URL, Hub, HubKey, Manifest, StartupError, hookimpl

from .config import CONFIG_SCHEMA, PROTOCOL_5, PROTOCOL_311, BrokerUrl, default_client_id
from .filters import SubscriptionLedger
from .transport import MqttTransport

_LOGGER = logging.getLogger(__name__)

MANIFEST = Manifest(name="mqtt", after=("broker",), sections=("mqtt",))
"""After broker: the embedded broker listens before this connects to it (when ``mqtt: broker:`` is unset)."""

DATA_MQTT: HubKey[MqttTransport] = HubKey("mqtt.transport")
"""Key of the running :class:`MqttTransport` in ``hub.data``."""

SUBSCRIPTIONS_FILE = "mqtt-subscriptions.json"
"""In the data directory: what the broker's session holds, so a later run can unsubscribe what it no longer wants."""


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """The ``mqtt:`` section."""
    return {"mqtt": CONFIG_SCHEMA}


@hookimpl
async def hub_start(hub: Hub) -> None:
    """Connect to the configured or the embedded broker and start feeding ``hub.messages`` (roles taking input)."""
    if not hub.role.takes_input:
        return
    if hub.messages.has_transport:
        _LOGGER.info("Another transport (rabbitmq) carries the hub's messages: the mqtt plugin stands aside")
        return
    config = hub.config["mqtt"]
    if config.get("broker"):
        url = BrokerUrl.parse(config["broker"])
        protocol = config.get("protocol") or PROTOCOL_5
        hub.data[DATA_BROKER_URL] = config["broker"]  # nodes and simulators use the same broker
    else:
        embedded = hub.data.get(DATA_BROKER_URL)
        if embedded is None:
            raise StartupError(
                "No MQTT broker to connect to: mqtt: broker: is not set in config.yaml and the embedded "
                "broker is not running (is the broker plugin disabled?)"
            )
        url = BrokerUrl.parse(embedded)
        if config.get("protocol") == PROTOCOL_5:
            _LOGGER.warning("The embedded broker speaks MQTT 3.1.1 only: ignoring mqtt: protocol: 5")
        protocol = PROTOCOL_311
    client_id = config.get("client_id") or default_client_id(hub.config["hub"]["name"])
    ledger = SubscriptionLedger(hub.data_dir / SUBSCRIPTIONS_FILE, f"{url.display} {client_id}")
    transport = MqttTransport(hub, url, client_id=client_id, protocol=protocol, settings=config, ledger=ledger)
    hub.data[DATA_MQTT] = transport
    await transport.start()


@hookimpl
async def hub_stop(hub: Hub) -> None:
    """Stop intake; in-flight messages get their commit and PUBACK (bounded by ``stop_timeout``); disconnect."""
    transport = hub.data.get(DATA_MQTT)
    if transport is not None:
        await transport.stop()
