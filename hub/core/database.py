"""What a plugin that owns tables sees of the database: ``hub.data[DATA_DATABASE]``, provided by storage.

Declared here, without importing SQLAlchemy, so plugins can type against it
and the core stays free of SQL: the connections these yield are SQLAlchemy
``AsyncConnection`` objects.  Storage sets it in its ``hub_setup``, after
running every plugin's migrations (the ``hub_db_migrations`` hook) and before
any other plugin's ``hub_setup``; it is removed when storage shuts down.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol


class Database(Protocol):
    """The hub's database, shared with storage: SQLite or PostgreSQL.

    ``connect()`` and ``begin()`` raise :class:`~hub.core.errors.StorageUnavailable`
    when the database cannot be reached (or storage has stopped); errors of the
    caller's own SQL reach the caller unchanged.
    """

    dialect: str
    """``"sqlite"`` or ``"postgresql"``, for the rare query that must differ."""

    def connect(self) -> AbstractAsyncContextManager[Any]:
        """``async with database.connect() as conn``: a connection for reads (``await conn.execute(…)``)."""
        ...

    def begin(self) -> AbstractAsyncContextManager[Any]:
        """``async with database.begin() as conn``: a transaction, committed when the block ends without error."""
        ...
