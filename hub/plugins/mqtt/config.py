"""The ``mqtt:`` section: its schema, and the broker URL turned into what gmqtt needs.

The broker URL is the one place credentials enter this plugin, and the one
thing it logs about the broker, so :class:`BrokerUrl` keeps them apart:
:attr:`BrokerUrl.display` (``mqtt://host:port``) is what goes in logs and
errors, the username and password only ever go to gmqtt.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import voluptuous as vol

from hub import InvalidBrokerUrl

PROTOCOL_5 = "5"
PROTOCOL_311 = "3.1.1"
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}

DEFAULT_RECEIVE_MAXIMUM = 10_000
"""How many unacknowledged QoS 1 messages the broker may have in flight to the hub (MQTT 5).

Acknowledging after commit means every message of the open storage batch is
unacknowledged until that batch commits, so the window must hold at least one
batch plus what arrives while it commits: throughput is capped near
``receive_maximum / (flush age + commit time)``.  With the default 10,000 and a
commit cycle of ~0.1 s that cap is ~100k msg/s, above what one hub process
ingests; a window of 20 (Mosquitto's default for MQTT 3.1.1 clients) would cap
it at ~200 msg/s.  Memory is bounded by it too: each in-flight message is one
small gmqtt task and its payload, about 20 MB at the default.
"""

DEFAULT_SESSION_EXPIRY = 7 * 24 * 3600
"""A week: how long the broker keeps the hub's subscriptions and queues messages while the hub is down."""


@dataclass(frozen=True)
class BrokerUrl:
    """A parsed ``mqtt://`` or ``mqtts://`` URL."""

    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        """Parse ``url``; InvalidBrokerUrl (whose message never repeats the password) when it is not usable."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as err:  # urlsplit's own complaint ("Port out of range …") has no secret in it
            raise InvalidBrokerUrl(f"not a broker URL ({err})") from None
        if parts.scheme not in DEFAULT_PORTS:
            raise InvalidBrokerUrl("expected mqtt://host[:port] or mqtts://host[:port]")
        if not parts.hostname:
            raise InvalidBrokerUrl("the broker URL has no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise InvalidBrokerUrl("a broker URL has no path, query or fragment")
        return cls(
            scheme=parts.scheme,
            host=parts.hostname,
            port=port or DEFAULT_PORTS[parts.scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    @property
    def tls(self) -> bool:
        """True for ``mqtts://``."""
        return self.scheme == "mqtts"

    @property
    def display(self) -> str:
        """The URL without credentials: the only form that may be logged."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def broker_url(value: Any) -> str:
    """Voluptuous validator for ``mqtt.broker``: must parse as a :class:`BrokerUrl`."""
    if not isinstance(value, str):
        raise vol.Invalid("expected a URL such as mqtt://user:password@host:1883")
    try:
        BrokerUrl.parse(value)
    except InvalidBrokerUrl as err:
        raise vol.Invalid(str(err)) from None
    return value.strip()


def protocol(value: Any) -> str:
    """``5`` or ``3.1.1`` (YAML reads the first as an int, the second as a string)."""
    text = str(value).strip()
    if text in ("5", "5.0"):
        return PROTOCOL_5
    if text == PROTOCOL_311:
        return PROTOCOL_311
    raise vol.Invalid("expected 5 or 3.1.1")


def _client_id(value: Any) -> str:
    text = vol.Coerce(str)(value)
    if not 1 <= len(text.encode()) <= 65535:
        raise vol.Invalid("expected 1 to 65535 bytes")
    return text


def _seconds(minimum: float, maximum: float) -> vol.All:
    return vol.All(vol.Coerce(float), vol.Range(min=minimum, max=maximum))


def _backoff_order(section: dict[str, Any]) -> dict[str, Any]:
    if section["min_delay"] > section["max_delay"]:
        raise vol.Invalid("min_delay must not exceed max_delay", path=["min_delay"])
    return section


def _tls_needs_mqtts(section: dict[str, Any]) -> dict[str, Any]:
    tls, broker = section["tls"], section.get("broker")
    if (tls["insecure"] or len(tls) > 1) and (broker is None or not BrokerUrl.parse(broker).tls):
        raise vol.Invalid("tls options need an mqtts:// broker URL", path=["tls"])
    return section


def _key_needs_cert(tls: dict[str, Any]) -> dict[str, Any]:
    if "keyfile" in tls and "certfile" not in tls:
        raise vol.Invalid("keyfile needs certfile", path=["keyfile"])
    return tls


TLS_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional("ca_certs"): vol.IsFile(msg="no such file"),
            vol.Optional("certfile"): vol.IsFile(msg="no such file"),
            vol.Optional("keyfile"): vol.IsFile(msg="no such file"),
            vol.Optional("insecure", default=False): bool,
        }
    ),
    _key_needs_cert,
)

CONFIG_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional("broker"): broker_url,
            vol.Optional("client_id"): _client_id,
            vol.Optional("keepalive", default=60): vol.All(int, vol.Range(min=5, max=65535)),
            vol.Optional("protocol"): protocol,
            vol.Optional("receive_maximum", default=DEFAULT_RECEIVE_MAXIMUM): vol.All(int, vol.Range(min=1, max=65535)),
            vol.Optional("session_expiry", default=DEFAULT_SESSION_EXPIRY): vol.All(
                int, vol.Range(min=0, max=0xFFFFFFFF)
            ),
            vol.Optional("tls", default={}): TLS_SCHEMA,
            vol.Optional("reconnect", default={}): vol.All(
                vol.Schema(
                    {
                        vol.Optional("min_delay", default=0.5): _seconds(0.01, 3600),
                        vol.Optional("max_delay", default=60.0): _seconds(0.01, 3600),
                    }
                ),
                _backoff_order,
            ),
            vol.Optional("connect_timeout", default=10.0): _seconds(0.1, 600),
            vol.Optional("stop_timeout", default=10.0): _seconds(0.0, 600),
        }
    ),
    _tls_needs_mqtts,
)
"""``mqtt:`` (every key optional; the defaults connect to the embedded broker)::

    mqtt:
      broker: mqtt://user:password@host:1883   # or mqtts://…; absent: the embedded broker
      client_id: hub-greenhouse  # default "hub-" + hub.name; keep it stable, the session is keyed by it
      keepalive: 60              # s
      protocol: 5                # 5, or 3.1.1 (RabbitMQ's MQTT plugin); always 3.1.1 on the embedded broker
      receive_maximum: 10000     # MQTT 5 in-flight window to the hub, see DEFAULT_RECEIVE_MAXIMUM
      session_expiry: 604800     # s the broker keeps the session (and queues QoS 1) while the hub is away
      tls: {ca_certs: ca.pem, certfile: hub.pem, keyfile: hub.key, insecure: false}   # mqtts:// only
      reconnect: {min_delay: 0.5, max_delay: 60}   # s, exponential backoff with jitter
      connect_timeout: 10        # s for one connection attempt (TCP, TLS, CONNACK)
      stop_timeout: 10           # s hub_stop waits for in-flight messages to be committed and acknowledged
"""


def default_client_id(hub_name: str) -> str:
    """``hub-<name>`` with anything outside ``[A-Za-z0-9_-]`` replaced, stable across restarts."""
    return "hub-" + re.sub(r"[^A-Za-z0-9_-]", "-", hub_name)


def ssl_context(tls: dict[str, Any]) -> ssl.SSLContext:
    """The TLS context for an ``mqtts://`` broker from the ``tls:`` options."""
    context = ssl.create_default_context(cafile=tls.get("ca_certs"))
    if tls.get("certfile"):
        context.load_cert_chain(tls["certfile"], tls.get("keyfile"))
    if tls.get("insecure"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
