"""Built-in broker: an embedded MQTT broker (amqtt), so a fresh install runs with no broker to set up.

It starts only when ``mqtt: broker:`` is not set (and never for one-off CLI
commands).  ``broker:`` in config.yaml::

    broker:
      host: 127.0.0.1     # where to listen; anything but loopback needs users:
      port: 1883
      users:              # full-access accounts, username: password (use !secret); hashed at every start
        tools: !secret mqtt_tools_password
      login_failures: {burst: 10, per_minute: 6}   # per client address and per username
      max_pending_logins: 16
      mosquitto:          # where `hub device credentials` writes for a Mosquitto deployment
        password_file: /etc/mosquitto/passwd
        acl_file: /etc/mosquitto/acl

Devices get their own credentials, limited to their own topics, with
``hub device credentials add MAC`` (:mod:`.cli`; rights in :mod:`.acl`), for
this broker and for Mosquitto alike.  Binding a non-loopback address without
users is a config error: no anonymous broker on the LAN.  A port that is taken makes ``hub run`` exit 1 with how to
use the broker already listening there (a :class:`~hub.StartupError`,
which the plugin manager does not isolate: a hub without its broker would only
pretend to run).

Order: the mqtt plugin connects in its ``hub_start`` to the URL this plugin
puts in ``hub.data[DATA_BROKER_URL]``; its manifest says ``after=("broker",)``,
so this ``hub_start`` runs first and the broker listens by then.  It shuts down
in ``hub_shutdown``, after every plugin's ``hub_stop`` (mqtt disconnects there).

amqtt speaks MQTT 3.1.1 only, keeps sessions in memory and handles a few
thousand messages a second: fine for trying the hub out and a hobbyist's
fleet.  Real deployments run Mosquitto with ``deploy/mosquitto.conf``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import voluptuous as vol

from hub import DATA_BROKER_URL, Hub, HubKey, HubState, Manifest, hookimpl, is_loopback

from .acl import discovery_prefix
from .cli import register_commands
from .embedded import EmbeddedBroker

_LOGGER = logging.getLogger(__name__)

MANIFEST = Manifest(name="broker", sections=("broker",))

DATA_BROKER: HubKey[EmbeddedBroker] = HubKey("broker.embedded")
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
            vol.Optional("login_failures", default={}): {
                vol.Optional("burst", default=10): vol.All(int, vol.Range(min=1, max=100_000)),
                vol.Optional("per_minute", default=6.0): vol.All(vol.Coerce(float), vol.Range(min=0.01, max=100_000)),
            },
            vol.Optional("max_pending_logins", default=16): vol.All(int, vol.Range(min=1, max=10_000)),
            vol.Optional("mosquitto", default={}): {
                vol.Optional("password_file"): vol.All(str, vol.Length(min=1)),
                vol.Optional("acl_file"): vol.All(str, vol.Length(min=1)),
            },
        }
    ),
    _no_anonymous_on_the_lan,
)


@hookimpl
def hub_config_schema() -> dict[str, Any]:
    """The ``broker:`` section."""
    return {"broker": CONFIG_SCHEMA}


@hookimpl
def hub_cli_commands(register: Callable[..., None]) -> None:
    """``hub device credentials add/list/remove/sync``."""
    register_commands(register)


@hookimpl
async def hub_start(hub: Hub) -> None:
    """Listen before the mqtt plugin connects (see the module docstring on order); only in roles that take input."""
    if not hub.role.takes_input or hub.config.get("mqtt", {}).get("broker") or hub.messages.has_transport:
        return
    config = hub.config["broker"]
    broker = EmbeddedBroker(config, hub.data_dir, hub.metrics, discovery_prefix(hub.config))
    hub.data[DATA_BROKER_URL] = await broker.start()
    hub.data[DATA_BROKER] = broker
    logging.getLogger(_AMQTT_HANDLER_LOGGER).addFilter(_ShutdownPubackRace(hub))
    gate = broker.gate
    access = (
        f"{len(config['users'])} full-access user(s), {gate.device_count} device(s) limited to their own topics"
        if gate is not None
        else "anonymous clients, loopback only"
    )
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
    broker = hub.data.pop(DATA_BROKER, None)
    if broker is not None:
        await broker.stop()
    handler_logger = logging.getLogger(_AMQTT_HANDLER_LOGGER)
    for log_filter in [f for f in handler_logger.filters if isinstance(f, _ShutdownPubackRace) and f.hub is hub]:
        handler_logger.removeFilter(log_filter)


_AMQTT_HANDLER_LOGGER = "amqtt.mqtt.protocol.handler"


class _ShutdownPubackRace(logging.Filter):
    """Drops amqtt's "PUBACK for unknown pending message" warnings while the hub stops.

    amqtt handles a client's packets in separate tasks, so the PUBACKs the hub
    sends just before its DISCONNECT can be processed after the session was
    wound up and are reported as unknown: one line per message in flight at
    every shutdown, and nothing to act on (the embedded broker's sessions live in
    memory).  Outside shutdown the warning passes, as it may mean something then.
    """

    def __init__(self, hub: Hub) -> None:
        super().__init__()
        self.hub = hub

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            self.hub.state is HubState.STOPPING
            and record.getMessage().startswith("Received PUBACK for unknown pending message")
        )
