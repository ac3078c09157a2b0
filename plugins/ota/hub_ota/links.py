"""Download links: per node, per image, short-lived and single use, so a node needs no credentials to fetch its
firmware and nothing else can be fetched with what it was given.

A link is ``/api/ota/download/<token>``, the token 256 random bits. The database keeps only its SHA-256 (a copy of
the database opens nothing), with the node and image it is for, its expiry and how far its download got.

"Single use" means one download by one node, resumable. The first request binds the link to the client address
that made it, and from then on only that address may use it, for the whole image or ranges of it (a node resumes
a broken download with ``Range: bytes=N-``), until the download is over:

* a node's link is spent once the node reports a new firmware version (it installed something: this download is
  done), or revoked when its rollout settles the attempt otherwise (failed, cancelled);
* a group's link (in a group manifest, no node to hear from) is spent once a response has carried the image's
  last byte.

A server cannot tell that bytes it sent arrived, so a response that carried the last byte does not spend a node's
link: the node may still resume. An unknown token, or one bound to another address, answers 404; a spent or
expired link 410 (for a day, then 404).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from hub import Database, HubError

from .schema import links as links_table

PURPOSE_COMMAND = "command"
"""A link sent in a rollout's FIRMWARE_UPDATE command."""
PURPOSE_MANIFEST = "manifest"
"""A link handed out in an ESPHome update manifest."""
GROUP_PREFIX = "group:"
"""The holder of a group manifest's links: ``group:<name>`` instead of a node id."""
KEEP_EXPIRED = 86400.0
"""Seconds an expired or spent link is kept, so it answers 410 rather than 404; then :meth:`purge` drops it."""
TOKEN_BYTES = 32


class LinkRefused(HubError):
    """The link cannot be used: ``status`` 404 (unknown, or bound to another client) or 410 (expired, spent)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True, slots=True)
class Link:
    token_hash: str
    node_id: str
    sha256: str
    purpose: str
    rollout_id: str | None
    created: float
    expires: float
    client: str | None
    started: float | None
    completed: float | None


def token_hash(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


class DownloadLinks:
    """The links of one hub; see the module docstring."""

    def __init__(self, database: Database, clock: Callable[[], float]) -> None:
        self._database = database
        self._clock = clock

    async def mint(
        self, node_id: str, sha256: str, lifetime: float, *, purpose: str, rollout_id: str | None = None
    ) -> str:
        """A new link's token for ``node_id`` to download image ``sha256`` within ``lifetime`` seconds."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self._clock()
        values = {
            "token_hash": token_hash(token),
            "node_id": node_id,
            "sha256": sha256,
            "purpose": purpose,
            "rollout_id": rollout_id,
            "created": now,
            "expires": now + lifetime,
        }
        async with self._database.begin() as conn:
            await conn.execute(sa.insert(links_table).values(**values))
        return token

    async def open(self, token: str, client: str) -> Link:
        """The link of ``token`` for a download request from ``client``; :class:`LinkRefused` when it may not be used.

        The first request binds the link to ``client``.
        """
        if not 20 <= len(token) <= 100:
            raise LinkRefused(404, "link_not_found", "no such download link")
        digest = token_hash(token)
        table = links_table
        async with self._database.begin() as conn:
            row = (await conn.execute(sa.select(table).where(table.c.token_hash == digest))).first()
            if row is None:
                raise LinkRefused(404, "link_not_found", "no such download link")
            link = Link(**row._mapping)
            if link.completed is not None:
                raise LinkRefused(410, "link_used", "this download link was used already")
            if self._clock() >= link.expires:
                raise LinkRefused(410, "link_expired", "this download link has expired")
            if link.client is None:
                bound = await conn.execute(
                    sa.update(table)
                    .where(table.c.token_hash == digest, table.c.client.is_(None))
                    .values(client=client, started=self._clock())
                )
                if bound.rowcount == 1:
                    return Link(**{**row._mapping, "client": client, "started": self._clock()})
                row = (await conn.execute(sa.select(table).where(table.c.token_hash == digest))).first()
                if row is None:  # revoked meanwhile
                    raise LinkRefused(404, "link_not_found", "no such download link")
                link = Link(**row._mapping)
            if link.client != client:
                raise LinkRefused(404, "link_not_found", "no such download link")
            return link

    async def complete(self, link: Link) -> None:
        """The download of ``link`` is over: it is spent."""
        table = links_table
        async with self._database.begin() as conn:
            await conn.execute(
                sa.update(table)
                .where(table.c.token_hash == link.token_hash, table.c.completed.is_(None))
                .values(completed=self._clock())
            )

    async def spend(self, node_id: str) -> int:
        """The node reported a new firmware version: its links are spent; returns how many."""
        table = links_table
        async with self._database.begin() as conn:
            spent = await conn.execute(
                sa.update(table)
                .where(table.c.node_id == node_id, table.c.completed.is_(None))
                .values(completed=self._clock())
            )
            return spent.rowcount

    async def revoke(
        self, *, digest: str | None = None, rollout_id: str | None = None, sha256: str | None = None
    ) -> int:
        """Drop the links not yet spent with this token hash, of a rollout and/or of an image (at least one); returns
        how many."""
        if digest is None and rollout_id is None and sha256 is None:
            raise ValueError("revoke a link, the links of a rollout or of an image, not all")
        table = links_table
        conditions = [table.c.completed.is_(None)]
        for column, value in ((table.c.token_hash, digest), (table.c.rollout_id, rollout_id), (table.c.sha256, sha256)):
            if value is not None:
                conditions.append(column == value)
        async with self._database.begin() as conn:
            return (await conn.execute(sa.delete(table).where(*conditions))).rowcount

    async def purge(self) -> int:
        """Drop links expired more than :data:`KEEP_EXPIRED` seconds ago; returns how many."""
        async with self._database.begin() as conn:
            deleted = await conn.execute(
                sa.delete(links_table).where(links_table.c.expires < self._clock() - KEEP_EXPIRED)
            )
            return deleted.rowcount
