"""amqtt glue: the authentication plugin, and a Broker whose topic checks call the LoginGate inline.

amqtt makes plugins from their dotted path and a ``Config`` dataclass; the
running :class:`~.logins.LoginGate` is passed in that config.  Logins are
decided before amqtt sees a connection (:mod:`.front`).

Topic checks do not go through an amqtt topic plugin: amqtt asks topic plugins
for every PUBLISH a client sends and for every message it delivers (RECEIVE),
and it makes an asyncio task for each question.  That doubled the broker's work
per message, and amqtt acknowledges a PUBLISH before it processes it and drops
what it has not processed when the client disconnects: a publisher that
disconnected after its PUBACKs lost about half of 600 messages in a measurement.
:class:`AclBroker` answers inline instead, by overriding
``Broker._topic_filtering`` (amqtt private API: ``amqtt`` is pinned below 0.13
in pyproject.toml, and tests/broker/test_broker_acl.py fails if the override is
no longer called).  A refused PUBLISH is dropped by amqtt (the client still gets
its PUBACK, as with Mosquitto); a refused SUBSCRIBE gets the failure code 0x80.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session


class HubAuthPlugin(BaseAuthPlugin):
    """amqtt's authentication hook: the front door (:mod:`.front`) already admitted the connection.

    It only confirms that the credentials amqtt read are the ones the gate just accepted
    (:meth:`LoginGate.recheck`, a cache lookup): nothing is counted twice, nothing is hashed again.
    """

    @dataclass
    class Config:
        gate: Any = None
        """The hub's :class:`~.logins.LoginGate`."""

    async def authenticate(self, *, session: Session) -> bool | None:
        return self.config.gate.recheck(session.username, session.password)


class AclBroker(Broker):
    """amqtt's Broker with every PUBLISH, SUBSCRIBE and delivery checked by the gate, inline."""

    def __init__(self, config: dict[str, Any], gate: Any) -> None:
        super().__init__(config)
        self._gate = gate

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        return self._gate.allowed(session.username if session is not None else None, topic, action.value)
