"""The two amqtt plugins the embedded broker runs with accounts: authentication and topic checks, by the LoginGate.

amqtt makes plugins from their dotted path and a ``Config`` dataclass; the
running :class:`~.logins.LoginGate` is passed in that config.  amqtt asks the
topic plugin for every PUBLISH a client sends, every SUBSCRIBE, and every
message it is about to deliver (RECEIVE); accounts that may do everything (the
hub's own) are answered at once.  A refused PUBLISH is dropped by amqtt (the
client still gets its PUBACK, as with Mosquitto), a refused SUBSCRIBE gets the
failure return code 0x80.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session


class HubAuthPlugin(BaseAuthPlugin):
    """amqtt's authentication hook → :meth:`LoginGate.authenticate`."""

    @dataclass
    class Config:
        gate: Any = None
        """The hub's :class:`~.logins.LoginGate`."""

    async def authenticate(self, *, session: Session) -> bool | None:
        will_topic = session.will_topic if session.will_flag else None
        return await self.config.gate.authenticate(
            session.username, session.password, session.remote_address, will_topic
        )


class HubTopicPlugin(BaseTopicPlugin):
    """amqtt's topic hook → the logged-in account's :class:`~.acl.Rules`."""

    @dataclass
    class Config:
        gate: Any = None
        """The hub's :class:`~.logins.LoginGate`."""

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        gate = self.config.gate
        username = session.username if session is not None else None
        rules = gate.rules(username)
        if rules is None:
            return True
        if rules is False or topic is None:
            allowed = False
        elif action is Action.PUBLISH:
            allowed = rules.may_publish(topic)
        elif action is Action.SUBSCRIBE:
            allowed = rules.may_subscribe(topic)
        else:
            allowed = rules.may_receive(topic)
        if not allowed:
            gate.denied(action.value if action is not None else "unknown", username, topic or "")
        return allowed
