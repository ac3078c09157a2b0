"""The database as other plugins and storage's own services see it: errors that mean "unreachable" become
:class:`~hub.StorageUnavailable`, so callers handle one HubError instead of driver exceptions.

:class:`SharedDatabase` is what storage puts at ``hub.data[DATA_DATABASE]``
(the contract is :class:`hub.Database`).  Errors of the caller's
own SQL (a constraint violated, a syntax error) pass through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub import StorageUnavailable

_SQLITE_UNAVAILABLE = {5, 6, 7, 10, 13, 14}
"""SQLite's primary result codes BUSY, LOCKED, NOMEM, IOERR, FULL, CANTOPEN (its syntax errors share their class)."""


def _is_unavailable(err: BaseException) -> bool:
    """True when ``err`` says the database cannot be used now, rather than that a statement is wrong.

    A dropped server shows as an OSError while connecting and as a DBAPIError
    marked ``connection_invalidated`` mid-statement; a busy pool as SQLAlchemy's
    TimeoutError; SQLite's trouble only by its result code.
    """
    if isinstance(err, OSError | exc.TimeoutError | exc.DisconnectionError):
        return True
    if not isinstance(err, exc.DBAPIError):
        return False
    code = getattr(err.orig, "sqlite_errorcode", None)
    return err.connection_invalidated or (code is not None and (code & 0xFF) in _SQLITE_UNAVAILABLE)


@contextlib.contextmanager
def unavailable_as_error(what: str) -> Iterator[None]:
    """Re-raise what :func:`_is_unavailable` recognises as StorageUnavailable (``what``: the failed operation)."""
    try:
        yield
    except Exception as err:
        if isinstance(err, StorageUnavailable) or not _is_unavailable(err):
            raise
        raise StorageUnavailable(f"{what} failed: the database is unavailable ({err})") from err


class SharedDatabase:
    """Connections and transactions on storage's engine for plugins that own tables (``hub.data[DATA_DATABASE]``)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.dialect: str = engine.dialect.name
        self._closed = False

    def close(self) -> None:
        """Storage is shutting down: refuse new connections from now on."""
        self._closed = True

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads, returned to the pool when the block ends."""
        async with self._connection() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction, committed when the block ends without error, else rolled back."""
        async with self._connection() as conn, conn.begin():
            yield conn

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        if self._closed:
            raise StorageUnavailable("storage has stopped")
        try:
            conn = await self._engine.connect()
        except (exc.SQLAlchemyError, OSError) as err:  # whatever stops a connection, the database is unavailable
            raise StorageUnavailable(f"cannot connect to the database ({err})") from err
        try:
            with unavailable_as_error("query"):
                yield conn
        finally:
            # Shielded, as SQLAlchemy's own ``async with engine.connect()`` does: a second cancellation (a task
            # cancelled again while it cleans up) must not leave the connection half-returned to the pool.
            await asyncio.shield(conn.close())
