"""The ``rabbitmq:`` section: its schema, and the queue arguments it turns into.

Everything that shapes a queue on the broker comes from here, so the broker's
queues are what config.yaml says: the defaults below are the arguments of a
fresh installation, ``queues: NAME: arguments:`` adds or overrides any
``x-`` argument.  The URL is the one place credentials enter the plugin;
:func:`display_url` is what logs and errors show.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import voluptuous as vol

from hub import validate_filter

QUEUE_KINDS = ("telemetry", "status", "acks")
"""The ingest queues, one per kind of device message, each bound on the topic exchange."""

DEFAULT_BINDINGS = {
    "telemetry": ["devices/+/data"],
    "status": ["devices/+/status"],
    "acks": ["devices/+/ack"],
}
"""MQTT-style filters each queue is bound with (RabbitMQ's MQTT plugin maps ``a/b`` to routing key ``a.b``)."""

DEFAULT_PREFETCH = 5_000
"""Unacknowledged messages the broker may have out to one worker.

A message is acknowledged only once the storage batch holding it committed, so
the window must hold a batch plus what arrives while it commits, as for MQTT's
receive-maximum; and it must stay well under ``storage: max_pending`` so that
storage never has to refuse what the broker sends.
"""
DEFAULT_MAX_LENGTH = 1_000_000
"""Messages a queue holds before it refuses publishers (``x-overflow: reject-publish``): never unbounded."""
DEFAULT_DELIVERY_LIMIT = 10
"""Deliveries after which a message is dead-lettered instead of redelivered (a kill -9 counts as one)."""
DEFAULT_DEAD_LETTER_MAX_LENGTH = 100_000
DEFAULT_DEAD_LETTER_TTL = 7 * 86_400
"""Seconds a dead-lettered message is kept for inspection."""

DEFAULT_EVENTS_INTERVAL = 0.1
"""Seconds a process gathers registry events before publishing them as one fan-out message."""
DEFAULT_EVENTS_MAX_LENGTH = 10_000
"""Fan-out messages a process's own event queue holds before the oldest are dropped (``drop-head``)."""

_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def _name(value: Any) -> str:
    text = vol.Coerce(str)(value)
    if not _NAME.match(text):
        raise vol.Invalid("expected 1-100 characters of letters, digits, '_', '.', ':' or '-'")
    return text


def amqp_url(value: Any) -> str:
    """Voluptuous validator for ``rabbitmq.url``: ``amqp://`` or ``amqps://`` with a host."""
    if not isinstance(value, str):
        raise vol.Invalid("expected a URL such as amqp://user:password@host:5672/vhost")
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as err:
        raise vol.Invalid(f"not an AMQP URL ({err})") from None
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise vol.Invalid("expected amqp://host[:port][/vhost] or amqps://…")
    return value.strip()


def display_url(url: str) -> str:
    """The URL without credentials: the only form that may be logged."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _filter(value: Any) -> str:
    text = vol.Coerce(str)(value)
    try:
        validate_filter(text)
    except ValueError as err:
        raise vol.Invalid(str(err)) from None
    return text


def _argument_value(value: Any) -> Any:
    if isinstance(value, bool | int | float | str):
        return value
    raise vol.Invalid("a queue argument is a number, a string or a boolean")


def _arguments(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise vol.Invalid("expected a mapping of x- arguments")
    result = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key.startswith("x-"):
            raise vol.Invalid(f"queue arguments start with 'x-': {key!r}")
        result[key] = _argument_value(item)
    return result


def _positive(maximum: int = 2**31 - 1) -> vol.All:
    return vol.All(int, vol.Range(min=1, max=maximum))


def _seconds(minimum: float, maximum: float) -> vol.All:
    return vol.All(vol.Coerce(float), vol.Range(min=minimum, max=maximum))


QUEUE_SCHEMA = vol.Schema(
    {
        vol.Optional("bindings"): vol.All([_filter], vol.Length(min=1)),
        vol.Optional("arguments", default={}): _arguments,
    }
)

CONFIG_SCHEMA = vol.Schema(
    {
        vol.Optional("url"): amqp_url,
        vol.Optional("prefix", default="hub"): _name,
        vol.Optional("exchange", default="amq.topic"): _name,
        vol.Optional("prefetch", default=DEFAULT_PREFETCH): _positive(65_535),
        vol.Optional("max_length", default=DEFAULT_MAX_LENGTH): _positive(),
        vol.Optional("delivery_limit", default=DEFAULT_DELIVERY_LIMIT): _positive(1_000),
        vol.Optional("queues", default={}): {vol.In(QUEUE_KINDS): QUEUE_SCHEMA},
        vol.Optional("dead_letter", default={}): vol.Schema(
            {
                vol.Optional("max_length", default=DEFAULT_DEAD_LETTER_MAX_LENGTH): _positive(),
                vol.Optional("message_ttl", default=DEFAULT_DEAD_LETTER_TTL): _seconds(1, 365 * 86_400),
            }
        ),
        vol.Optional("events", default={}): vol.Schema(
            {
                vol.Optional("interval", default=DEFAULT_EVENTS_INTERVAL): _seconds(0.01, 10),
                vol.Optional("max_length", default=DEFAULT_EVENTS_MAX_LENGTH): _positive(),
            }
        ),
        vol.Optional("confirm_timeout", default=10.0): _seconds(0.1, 600),
        vol.Optional("stop_timeout", default=10.0): _seconds(0.0, 600),
        vol.Optional("reconnect", default={}): vol.Schema(
            {
                vol.Optional("min_delay", default=0.5): _seconds(0.01, 3600),
                vol.Optional("max_delay", default=30.0): _seconds(0.01, 3600),
            }
        ),
    }
)
"""``rabbitmq:`` (all optional; without ``url`` the plugin does nothing)::

    rabbitmq:
      url: !secret amqp_url      # amqp://hub:…@rabbit1:5672/hub: the hub's transport is then RabbitMQ, not MQTT
      prefix: hub                # names: hub.telemetry, hub.status, hub.acks, hub.dead-letter, hub.events
      exchange: amq.topic        # where RabbitMQ's MQTT plugin publishes device messages
      prefetch: 5000             # unacknowledged messages per worker (acknowledged after commit)
      max_length: 1000000        # per ingest queue; beyond it publishers are refused (reject-publish)
      delivery_limit: 10         # deliveries before a message is dead-lettered
      queues:                    # per queue (telemetry, status, acks): bindings and extra x- arguments
        telemetry: {bindings: [devices/+/data], arguments: {x-max-length-bytes: 1000000000}}
      dead_letter: {max_length: 100000, message_ttl: 604800}   # the poison queue: bounded in length and age (s)
      events: {interval: 0.1, max_length: 10000}   # the event fan-out: s between batches; per-process queue bound
      confirm_timeout: 10        # s a publish (a command) waits for the broker's confirm
      stop_timeout: 10           # s hub_stop waits for in-flight messages to be committed and acknowledged
      reconnect: {min_delay: 0.5, max_delay: 30}
"""


def queue_name(config: dict[str, Any], kind: str) -> str:
    """The broker-side name of an ingest queue (``hub.telemetry``), the dead-letter queue, or the event exchange."""
    return f"{config['prefix']}.{kind}"


def bindings(config: dict[str, Any], kind: str) -> list[str]:
    """The MQTT-style filters queue ``kind`` is bound with."""
    return list(config["queues"].get(kind, {}).get("bindings") or DEFAULT_BINDINGS[kind])


def queue_arguments(config: dict[str, Any], kind: str) -> dict[str, Any]:
    """The arguments of ingest queue ``kind``: durable quorum, bounded, pushing back, dead-lettering poison."""
    arguments: dict[str, Any] = {
        "x-queue-type": "quorum",
        "x-max-length": config["max_length"],
        "x-overflow": "reject-publish",
        "x-delivery-limit": config["delivery_limit"],
        "x-dead-letter-exchange": queue_name(config, "dead-letter"),
        "x-dead-letter-strategy": "at-least-once",
    }
    arguments.update(config["queues"].get(kind, {}).get("arguments", {}))
    return arguments


def dead_letter_arguments(config: dict[str, Any]) -> dict[str, Any]:
    """The poison queue: bounded in length and age, the oldest dropped first when full."""
    dead = config["dead_letter"]
    return {
        "x-queue-type": "quorum",
        "x-max-length": dead["max_length"],
        "x-message-ttl": int(dead["message_ttl"] * 1000),
        "x-overflow": "drop-head",
    }


def routing_key(topic_filter: str) -> str:
    """An MQTT filter or topic as an AMQP topic binding/routing key: ``devices/+/data`` -> ``devices.*.data``."""
    return ".".join("*" if level == "+" else level for level in topic_filter.split("/"))


def covers(binding: str, topic_filter: str) -> bool:
    """True when every topic ``topic_filter`` matches is also matched by ``binding`` (both MQTT-style)."""
    wide, narrow = binding.split("/"), topic_filter.split("/")
    for index, level in enumerate(wide):
        if level == "#":
            return True
        if index >= len(narrow) or narrow[index] == "#":
            return False
        if level != "+" and level != narrow[index]:
            return False
    return len(wide) == len(narrow)
