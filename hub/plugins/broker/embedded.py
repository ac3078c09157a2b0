"""The embedded MQTT broker: amqtt in the hub's own event loop, bound where the config says and nowhere else.

amqtt binds 0.0.0.0 and allows anonymous clients unless told otherwise, and
logs every packet through its default plugins; here it gets one TCP listener on
the configured address and exactly one auth plugin: anonymous access when the
broker is loopback-only and no users are configured, otherwise amqtt's password
file with Argon2 hashes.  The password file is rewritten at every start from
``broker: users:`` (plaintext lives only in config.yaml / secrets.yaml); its
Argon2 cost is OWASP's minimum (19 MiB, 2 passes) because amqtt verifies in the
event loop, at every client connect.

With users configured, the hub's own MQTT connection uses an extra account with
a random password made at each start, so nobody has to configure one for it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from amqtt.broker import Broker
from amqtt.errors import BrokerError
from argon2 import PasswordHasher

from hub import StartupError, url_host

_LOGGER = logging.getLogger(__name__)

PASSWORD_FILE = "embedded-broker.passwd"
"""Written into the hub's data directory when users are configured (mode 0600)."""

_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
"""argon2id in the PHC string format amqtt's FileAuthPlugin verifies (through pwdlib, amqtt's own dependency)."""


class EmbeddedBroker:
    """One amqtt broker: :meth:`start` returns the URL the hub (and local simulators) connect to."""

    def __init__(self, host: str, port: int, users: Mapping[str, str], data_dir: Path) -> None:
        self.host = host
        self.port = port
        self._users = dict(users)
        self._data_dir = data_dir
        self._broker: Broker | None = None

    async def start(self) -> str:
        """Start listening; StartupError (with what to do) when the port is taken or the bind fails."""
        credentials = ""
        if self._users:
            internal_user = f"hub-internal-{secrets.token_hex(4)}"
            internal_password = secrets.token_urlsafe(24)
            path = self._data_dir / PASSWORD_FILE
            users = {**self._users, internal_user: internal_password}
            await asyncio.to_thread(_write_password_file, path, users)
            auth = {"amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(path)}}
            credentials = f"{quote(internal_user, safe='')}:{quote(internal_password, safe='')}@"
        else:
            auth = {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}
        config = {"listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}}, "plugins": auth}
        broker = Broker(config)
        try:
            with _without_startup_traceback():
                await broker.start()
        except BrokerError as err:
            raise self._startup_error(err) from None
        self._broker = broker
        return f"mqtt://{credentials}{url_host(self.host)}:{self.port}"

    async def stop(self) -> None:
        """Close the listener and every session."""
        broker, self._broker = self._broker, None
        if broker is not None:
            await broker.shutdown()

    def _startup_error(self, err: BrokerError) -> StartupError:
        cause = err.__cause__
        where = f"{self.host}:{self.port}"
        if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
            url = f"mqtt://{url_host(self.host)}:{self.port}"
            return StartupError(
                f"Cannot start the embedded MQTT broker: {where} is already in use (is Mosquitto running?). "
                f"To use that broker, set in config.yaml:\n  mqtt:\n    broker: {url}\n"
                f"or give the embedded broker another port (broker: port:)."
            )
        return StartupError(f"Cannot start the embedded MQTT broker on {where}: {cause or err}")


def _write_password_file(path: Path, users: Mapping[str, str]) -> None:
    """``user:argon2-hash`` lines, readable by the hub's user only."""
    lines = "".join(f"{user}:{_HASHER.hash(password)}\n" for user, password in users.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(lines)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed


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
