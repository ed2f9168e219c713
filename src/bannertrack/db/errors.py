"""Map driver errors to ``DatabaseUnavailableError`` at the one place they surface."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc

from bannertrack.errors import DatabaseUnavailableError

# Errors that mean "the database cannot answer now", as opposed to a bug in a query.
# asyncpg connection failures arrive as OSError (refused) or wrapped by SQLAlchemy as
# InterfaceError/OperationalError; a pool that cannot hand out a connection times out.
# db.pg_bulk talks to asyncpg directly, so its connection errors arrive unwrapped; so does
# db.sqlite_clicks to sqlite3, whose errors map as SQLAlchemy's wrappers of them do
# (OperationalError: locked, disk full, read-only, I/O error; InterfaceError).
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    # The server's statement_timeout (db.engine): the statement was rolled back.
    asyncpg.exceptions.QueryCanceledError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    sqlite3.OperationalError,
    sqlite3.InterfaceError,
    OSError,
    asyncio.TimeoutError,
)


_QUERY_CANCELED = "57014"


@contextmanager
def map_db_errors() -> Iterator[None]:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise DatabaseUnavailableError(f"database unavailable: {type(exc).__name__}") from exc
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnavailableError("database connection lost") from exc
        if getattr(exc.orig, "sqlstate", None) == _QUERY_CANCELED:
            # Through SQLAlchemy, asyncpg's QueryCanceledError is a plain DBAPIError.
            raise DatabaseUnavailableError("database statement timed out") from exc
        raise
