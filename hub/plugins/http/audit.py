"""The audit trail: who changed what, when — every API request that could change something, with its outcome.

Every request other than GET, HEAD and OPTIONS is recorded after it was
answered: time, user and token (when the request was authenticated), method,
path, status and client address; never a body (sign-ins carry passwords).  Each
record goes to the ``hub.audit`` logger and, when storage runs, into the
``http_audit`` table this plugin owns (its own migration), written in small
batches off the request path.  ``GET /api/audit`` reads it back.

Refusals of anonymous requests (no valid token, a failed sign-in) are recorded at
most :data:`ANONYMOUS_PER_MINUTE` a minute (in bursts of as many); the rest are
only counted (``hub_http_audit_suppressed_total``).  Without that bound anyone who
can reach the port could write rows to the hub's database and lines to its log
without limit, changing nothing else.  Requests made with a token are always recorded.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from hub import DATA_DATABASE, Hub, RateLimitedLogger, StorageUnavailable

from .remote import REMOTE_KEY

_LOGGER = logging.getLogger("hub.audit")

MIGRATIONS = Path(__file__).with_name("migrations")
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_PATH = 500
MAX_QUEUED = 10_000
"""Records waiting for the database; beyond this the oldest are dropped (they were logged already)."""
ANONYMOUS_PER_MINUTE = 60
"""Refused anonymous requests recorded a minute, in bursts of as many (see the module docstring)."""

metadata = sa.MetaData()
audit = sa.Table(
    "http_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("username", sa.Text),
    sa.Column("token_id", sa.Text),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("remote", sa.Text, nullable=False),
    sa.Index("ix_http_audit_ts", "ts"),
)


class AuditTrail:
    """Records changes made through the API; see the module docstring."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._queued: list[dict[str, Any]] = []
        self._kick = asyncio.Event()
        self._lock = asyncio.Lock()
        """One flush at a time, so records are written (and numbered) in the order they happened."""
        self._task: asyncio.Task[None] | None = None
        self._log = RateLimitedLogger(logging.getLogger(__name__))
        self.dropped = 0
        self._anonymous_tokens = float(ANONYMOUS_PER_MINUTE)
        self._anonymous_last = hub.clock()
        self._suppressed = hub.metrics.counter(
            "http_audit_suppressed", "Refused anonymous requests not recorded in the audit trail (over its rate)"
        )

    def start(self) -> None:
        """Begin writing records to the database in the background."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="http-audit")

    async def close(self) -> None:
        """Write what is queued, then stop."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._flush()

    def record(self, request: web.Request, status: int, username: str | None, token_id: str | None) -> None:
        """Note one answered request (cheap: no I/O here)."""
        if request.method in READ_ONLY_METHODS:
            return
        if username is None and status >= 400 and not self._take_anonymous():
            self._suppressed.inc()
            return
        row = {
            "ts": self._hub.clock(),
            "username": username,
            "token_id": token_id,
            "method": request.method,
            "path": request.path[:MAX_PATH],
            "status": status,
            "remote": request.get(REMOTE_KEY) or request.remote or "unknown",
        }
        _LOGGER.info("%s %s %s -> %d (%s)", username or "-", row["method"], row["path"], status, row["remote"])
        self._queued.append(row)
        if len(self._queued) > MAX_QUEUED:
            del self._queued[0]
            self.dropped += 1
        self._kick.set()

    def _take_anonymous(self) -> bool:
        """A token bucket: True while refused anonymous requests are within ANONYMOUS_PER_MINUTE."""
        now = self._hub.clock()
        elapsed, self._anonymous_last = now - self._anonymous_last, now
        if elapsed > 0:  # a clock stepped back refills nothing
            self._anonymous_tokens = min(
                ANONYMOUS_PER_MINUTE, self._anonymous_tokens + elapsed * ANONYMOUS_PER_MINUTE / 60
            )
        if self._anonymous_tokens < 1.0:
            return False
        self._anonymous_tokens -= 1.0
        return True

    async def query(self, *, limit: int, before_id: int | None = None) -> list[dict[str, Any]]:
        """The newest records first; StorageUnavailable without a database."""
        database = self._hub.data.get(DATA_DATABASE)
        if database is None:
            raise StorageUnavailable("the audit trail is kept in the database, and storage is not running")
        await self._flush()
        select = sa.select(audit).order_by(audit.c.id.desc()).limit(limit)
        if before_id is not None:
            select = select.where(audit.c.id < before_id)
        async with database.connect() as conn:
            return [dict(row) for row in (await conn.execute(select)).mappings()]

    async def _run(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            try:
                await self._flush()
            except StorageUnavailable as err:
                self._log.warning("write", "Audit records not stored yet: %s", err)
                await asyncio.sleep(2.0)
                self._kick.set()

    async def _flush(self) -> None:
        async with self._lock:
            database = self._hub.data.get(DATA_DATABASE)
            if database is None or not self._queued:
                return
            rows, self._queued = self._queued, []
            try:
                async with database.begin() as conn:
                    await conn.execute(sa.insert(audit), rows)
            except BaseException:
                self._queued = rows + self._queued
                raise
