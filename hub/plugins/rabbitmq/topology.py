"""Declaring the hub's exchanges and queues, idempotently, and explaining a queue that disagrees.

Every process declares the whole topology at every connection: declaring what
exists with the same arguments is a no-op on the broker, so any number of
workers and API instances can start in any order.  A queue that exists with
other arguments (changed in config.yaml, or made by hand) makes RabbitMQ close
the channel with ``PRECONDITION_FAILED`` and a text such as ``inequivalent arg
'x-max-length' for queue 'hub.telemetry' in vhost '/': received '10' but
current is '20'``; :class:`TopologyConflict` turns that into an error naming
the queue, the argument, both values and what to do.  Arguments cannot be
changed on an existing queue: it must be deleted (its messages with it) or
the config set back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractQueue, ExchangeType
from aiormq.exceptions import ChannelPreconditionFailed

from hub import StartupError

from .config import QUEUE_KINDS, bindings, dead_letter_arguments, queue_arguments, queue_name, routing_key

_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for (?P<what>queue|exchange) '(?P<name>[^']+)'.*?"
    r"received (?P<ours>.+?) but current is (?P<theirs>.+?)$"
)


class TopologyConflict(StartupError):
    """A queue or exchange exists on the broker with other arguments than config.yaml gives it."""


@dataclass
class Topology:
    """What :func:`declare` made: the ingest queues by kind, the topic exchange, the event fan-out exchange."""

    exchange: AbstractExchange
    queues: dict[str, AbstractQueue]
    dead_letter: AbstractQueue
    events: AbstractExchange
    filters: dict[str, str]
    """MQTT-style filter -> the queue kind it is bound to."""


async def declare(connection: AbstractConnection, channel: AbstractChannel, config: dict[str, Any]) -> Topology:
    """Declare (or find identical) everything the hub uses; :class:`TopologyConflict` on a disagreeing queue.

    Each declaration that fails closes its channel, so they are tried on a scratch
    channel first; ``channel`` (the consuming one) then declares the same, which
    the broker now takes as a no-op.
    """
    probe = await connection.channel()
    try:
        await _declare_all(probe, config)
    except ChannelPreconditionFailed as err:
        raise conflict(err, config) from None
    finally:
        if not probe.is_closed:
            await probe.close()
    return await _declare_all(channel, config)


async def _declare_all(channel: AbstractChannel, config: dict[str, Any]) -> Topology:
    name = config["exchange"]
    # amq.* exchanges always exist and may not be declared, only looked up.
    exchange = await channel.declare_exchange(name, ExchangeType.TOPIC, durable=True, passive=name.startswith("amq."))
    dead_exchange = await channel.declare_exchange(queue_name(config, "dead-letter"), ExchangeType.FANOUT, durable=True)
    dead_letter = await channel.declare_queue(
        queue_name(config, "dead-letter"), durable=True, arguments=dead_letter_arguments(config)
    )
    await dead_letter.bind(dead_exchange)
    queues: dict[str, AbstractQueue] = {}
    filters: dict[str, str] = {}
    for kind in QUEUE_KINDS:
        queue = await channel.declare_queue(
            queue_name(config, kind), durable=True, arguments=queue_arguments(config, kind)
        )
        for topic_filter in bindings(config, kind):
            await queue.bind(exchange, routing_key(topic_filter))
            filters[topic_filter] = kind
        queues[kind] = queue
    events = await channel.declare_exchange(queue_name(config, "events"), ExchangeType.FANOUT, durable=True)
    return Topology(exchange, queues, dead_letter, events, filters)


def conflict(err: ChannelPreconditionFailed, config: dict[str, Any]) -> TopologyConflict:
    """The broker's PRECONDITION_FAILED as an error saying which argument differs and what to do about it."""
    text = str(err.args[0] if err.args else err)
    match = _INEQUIVALENT.search(text)
    if match is None:
        return TopologyConflict(f"RabbitMQ refused the hub's topology: {text}")
    name, arg = match["name"], match["arg"]
    ours, theirs = match["ours"].strip("'"), match["theirs"].strip("'")
    return TopologyConflict(
        f"RabbitMQ {match['what']} {name!r} already exists with {arg} = {theirs}, but config.yaml "
        f"(rabbitmq: under prefix {config['prefix']!r}) gives it {arg} = {ours}. Arguments of an existing "
        f"{match['what']} cannot change: set it back in config.yaml, or delete the {match['what']} "
        f"(`rabbitmqctl delete_queue {name}`, losing the messages it holds) and start again."
    )


async def delete(connection: aio_pika.abc.AbstractConnection, config: dict[str, Any]) -> None:
    """Remove every queue and exchange of this prefix (tests, and `prefix` changes); the topic exchange stays."""
    channel = await connection.channel()
    try:
        for kind in (*QUEUE_KINDS, "dead-letter"):
            await channel.queue_delete(queue_name(config, kind))
        for kind in ("dead-letter", "events"):
            await channel.exchange_delete(queue_name(config, kind))
    finally:
        await channel.close()
