"""Built-in broker: an embedded MQTT broker (amqtt), so a fresh install runs with no broker to set up.

It starts only when ``mqtt: broker:`` is not set (and never for one-off CLI
commands).  ``broker:`` in config.yaml::

    broker:
      host: 127.0.0.1     # where to listen; anything but loopback needs users:
      port: 1883
      users:              # username: password (use !secret); hashed for amqtt at every start
        esp32: !secret mqtt_esp32_password

Binding a non-loopback address without users is a config error: no anonymous
broker on the LAN.  A port that is taken makes ``hub run`` exit 1 with how to
use the broker already listening there (a :class:`~hub.core.errors.StartupError`,
which the plugin manager does not isolate: a hub without its broker would only
pretend to run).

Order: the mqtt plugin connects in its ``hub_start`` to the URL this plugin
puts in ``hub.data[DATA_BROKER_URL]``.  pluggy calls later-registered plugins
first, and mqtt is registered after broker, so this ``hub_start`` is marked
``tryfirst``: the broker listens before any plugin's ``hub_start`` runs.  It
shuts down in ``hub_shutdown``, after mqtt disconnected in ``hub_stop``.

amqtt speaks MQTT 3.1.1 only, keeps sessions in memory and handles a few
thousand messages a second: fine for trying the hub out and a hobbyist's
fleet.  Real deployments run Mosquitto with ``deploy/mosquitto.conf``.
"""

from __future__ import annotations

import logging
from typing import Any

import voluptuous as vol

from hub.core.const import DATA_BROKER_URL
from hub.core.hub import ROLE_CLI, Hub
from hub.plugins.hookspecs import hookimpl

from .embedded import EmbeddedBroker, is_loopback

_LOGGER = logging.getLogger(__name__)

DATA_BROKER = "broker"
"""Key of the running :class:`EmbeddedBroker` in ``hub.data``."""


def _no_anonymous_on_the_lan(section: dict[str, Any]) -> dict[str, Any]:
    if not section["users"] and not is_loopback(section["host"]):
        raise vol.Invalid(
            f"listening on {section['host']} (not loopback) needs users: (no anonymous broker on the LAN)",
            path=["host"],
        )
    return section


CONFIG_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional("host", default="127.0.0.1"): vol.All(str, vol.Length(min=1)),
            vol.Optional("port", default=1883): vol.All(int, vol.Range(min=1, max=65535)),
            vol.Optional("users", default={}): {
                vol.All(str, vol.Match(r"^[^:\s]+$", msg="a username has no ':' or whitespace")): vol.All(
                    vol.Coerce(str), vol.Length(min=1, msg="empty password")
                )
            },
        }
    ),
    _no_anonymous_on_the_lan,
)


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """The ``broker:`` section."""
    return {"broker": CONFIG_SCHEMA}


@hookimpl(tryfirst=True)
async def hub_start(hub: Hub) -> None:
    """Listen before the mqtt plugin connects (see the module docstring on order)."""
    if hub.role == ROLE_CLI or hub.config.get("mqtt", {}).get("broker"):
        return
    config = hub.config["broker"]
    broker = EmbeddedBroker(config["host"], config["port"], config["users"], hub.data_dir)
    hub.data[DATA_BROKER_URL] = await broker.start()
    hub.data[DATA_BROKER] = broker
    access = f"{len(config['users'])} user(s)" if config["users"] else "anonymous clients, loopback only"
    _LOGGER.info(
        "Embedded MQTT broker (amqtt, MQTT 3.1.1) listening on %s:%d (%s)", config["host"], config["port"], access
    )
    _LOGGER.info(
        "The embedded broker keeps sessions in memory and handles a few thousand messages a second: real "
        "deployments should run Mosquitto (deploy/mosquitto.conf) and set mqtt: broker: in config.yaml"
    )


@hookimpl
async def hub_shutdown(hub: Hub) -> None:
    """Close the broker (the mqtt plugin disconnected in ``hub_stop``)."""
    broker: EmbeddedBroker | None = hub.data.pop(DATA_BROKER, None)
    if broker is not None:
        await broker.stop()
