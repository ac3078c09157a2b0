"""The embedded MQTT broker: amqtt in the hub's own event loop, bound where the config says and nowhere else.

amqtt binds 0.0.0.0 and allows anonymous clients unless told otherwise, and
logs every packet through its default plugins; here it gets one TCP listener on
the configured address and either anonymous access (loopback only, no
``broker: users:`` and no device credentials) or the hub's own glue
(:mod:`.amqtt_plugins`): logins checked by the :class:`~.logins.LoginGate` (off
the event loop, cached, throttled) and every publish, subscription and delivery
checked against the device ACL (:mod:`.acl`).  Whether accounts are required is decided
at start: the first device credentials added to a hub whose broker runs without
accounts take effect at its next start.

With accounts, the hub's own MQTT connection uses an extra account with a
random password made at each start, so nobody has to configure one for it.
Nothing about accounts is written to disk here (``broker: users:`` are hashed
in memory; device credentials live in the hub's store).
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from amqtt.broker import Broker
from amqtt.errors import BrokerError

from hub import Metrics, StartupError, url_host

from .amqtt_plugins import AclBroker
from .credentials import CredentialsError, CredentialStore
from .front import LISTENER, BrokerFront
from .logins import LoginGate
from .throttle import FailureThrottle

_LOGGER = logging.getLogger(__name__)

OLD_PASSWORD_FILE = "embedded-broker.passwd"
"""Where earlier versions wrote the users' hashes for amqtt; removed at start (nothing reads it any more)."""

_PLUGINS = "hub.plugins.broker.amqtt_plugins"


class EmbeddedBroker:
    """One amqtt broker: :meth:`start` returns the URL the hub (and local simulators) connect to."""

    def __init__(self, config: dict[str, Any], data_dir: Path, metrics: Metrics, discovery_prefix: str) -> None:
        self.host: str = config["host"]
        self.port: int = config["port"]
        self._config = config
        self._data_dir = data_dir
        self._metrics = metrics
        self._discovery_prefix = discovery_prefix
        self._broker: Broker | None = None
        self.gate: LoginGate | None = None
        """Set while the broker requires accounts."""
        self._front: BrokerFront | None = None

    async def start(self) -> str:
        """Start listening; StartupError (with what to do) when the port is taken or the bind fails."""
        credentials = ""
        await asyncio.to_thread((self._data_dir / OLD_PASSWORD_FILE).unlink, missing_ok=True)
        try:
            devices = (await asyncio.to_thread(CredentialStore.in_dir, self._data_dir)).devices
        except CredentialsError as err:
            raise StartupError(f"Cannot start the embedded MQTT broker: {err}") from None
        if self._config["users"] or devices:
            failures = self._config["login_failures"]
            self.gate = gate = await asyncio.to_thread(
                LoginGate,
                self._config["users"],
                self._data_dir,
                self._metrics,
                discovery_prefix=self._discovery_prefix,
                throttle=FailureThrottle(failures["burst"], failures["per_minute"]),
                user_throttle=FailureThrottle(failures["burst"], failures["per_minute"]),
                max_pending=self._config["max_pending_logins"],
            )
            plugins = {f"{_PLUGINS}.HubAuthPlugin": {"gate": gate}}
            credentials = f"{quote(gate.internal_user, safe='')}:{quote(gate.internal_password, safe='')}@"
        else:
            plugins = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
        if self.gate is None:
            listener = {"type": "tcp", "bind": f"{self.host}:{self.port}"}
            broker: Broker = Broker({"listeners": {LISTENER: listener}, "plugins": plugins})
        else:  # the front door listens and admits only authenticated connections (see .front)
            listener = {"type": "external", "bind": f"{self.host}:{self.port}"}
            broker = AclBroker({"listeners": {LISTENER: listener}, "plugins": plugins}, self.gate)
            self._front = BrokerFront(broker, self.gate)
        try:
            with _without_startup_traceback():
                await broker.start()
            if self._front is not None:
                await self._front.start(self.host, self.port)
        except (BrokerError, OSError) as err:
            if self._front is not None:
                await broker.shutdown()
            self._front = None
            self._close_gate()
            raise self._startup_error(err) from None
        self._broker = broker
        return f"mqtt://{credentials}{url_host(self.host)}:{self.port}"

    async def stop(self) -> None:
        """Close the listener and every session."""
        broker, self._broker = self._broker, None
        front, self._front = self._front, None
        if front is not None:
            await front.close_listener()
        if broker is not None:
            await broker.shutdown()
        if front is not None:
            await front.cancel_connections()
        self._close_gate()

    def _close_gate(self) -> None:
        gate, self.gate = self.gate, None
        if gate is not None:
            gate.close()

    def _startup_error(self, err: BrokerError | OSError) -> StartupError:
        cause = err if isinstance(err, OSError) else err.__cause__
        where = f"{self.host}:{self.port}"
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            url = f"mqtt://{url_host(self.host)}:{self.port}"
            return StartupError(
                f"Cannot start the embedded MQTT broker: {where} is already in use (is Mosquitto running?). "
                f"To use that broker, set in config.yaml:\n  mqtt:\n    broker: {url}\n"
                f"or give the embedded broker another port (broker: port:)."
            )
        return StartupError(f"Cannot start the embedded MQTT broker on {where}: {cause or err}")


class _DropStartupFailure(logging.Filter):
    """amqtt logs a traceback before raising; the hub reports the failure itself, with what to do about it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Broker startup failed"


@contextmanager
def _without_startup_traceback() -> Iterator[None]:
    logger = logging.getLogger("amqtt.broker")
    drop = _DropStartupFailure()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)
