"""Map driver errors to ``DatabaseUnavailableError`` at the one place they surface.

"The database is not there" is a 503 whatever form it takes, never a 500:

- refused or gone: ``OSError`` (connection refused, reset), asyncpg's connection errors
  (its ``InternalClientError`` too: a connection left mid-protocol by a shutdown),
  SQLAlchemy's ``OperationalError``/``InterfaceError``/``DisconnectionError``, or any
  driver error after which SQLAlchemy invalidated the connection;
- timed out: the pool's ``TimeoutError``, asyncio's, and the server's
  ``statement_timeout`` (57014: the statement was rolled back);
- by SQLSTATE, whether asyncpg raises it bare (``db.pg_bulk`` talks to asyncpg directly)
  or SQLAlchemy wraps it in a plain ``DBAPIError`` (its asyncpg adapter maps only a few
  classes): class 08 (connection exception), class 53 (insufficient resources: 53300 too
  many connections, 53100 disk full), 57P01 admin shutdown, 57P02 crash shutdown, 57P03
  "the database system is starting up" (``CannotConnectNowError``), 57P04 database
  dropped, 57P05 idle session timeout, and 25006 (a read-only standby after a failover).

A transaction the server cancelled without storing anything, 40P01 (deadlock detected)
and 40001 (serialization failure), is ``TransientError`` instead: retry it, the database
is there. (SQLite has no such error here: its writers take the write lock first, and a
busy lock is waited out by the busy timeout, after which it is unavailable.)

SQLite's ``sqlite3.OperationalError`` (locked, disk full, read-only, I/O error) and
``InterfaceError`` map the same way, bare (``db.sqlite_clicks``) or wrapped.

``is_unavailable`` and ``is_transient`` are the predicates, for a caller that must
classify an error without raising it (tests, the fault benchmark).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import exc as sa_exc

from bannertrack.errors import DatabaseUnavailableError, TransientError

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,
    # A connection whose server went away between statements: PostgreSQL's shutdown
    # notice (57P01) arrives on an idle pooled connection, asyncpg waits there for a
    # "ready" that never comes, and the next statement on it raises "cannot switch to
    # state ...; another operation is in progress" (seen under the outage test's stop).
    # As unavailable, the batch is spooled in doubt: neither lost nor doubled.
    asyncpg.exceptions.InternalClientError,
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    sqlite3.OperationalError,
    sqlite3.InterfaceError,
    OSError,
    asyncio.TimeoutError,
)

# SQLSTATE classes and codes that mean "cannot answer now", not "your query is wrong".
_UNAVAILABLE_CLASSES = ("08", "53")
_UNAVAILABLE_CODES = frozenset({"57014", "57P01", "57P02", "57P03", "57P04", "57P05", "25006"})
# The transaction was rolled back for the others' sake: deadlock, serialization failure.
_TRANSIENT_CODES = frozenset({"40P01", "40001"})


def unavailable_sqlstate(sqlstate: object) -> bool:
    """Whether a SQLSTATE says the database is not there (see the module docstring)."""
    if not isinstance(sqlstate, str):
        return False
    return sqlstate in _UNAVAILABLE_CODES or sqlstate[:2] in _UNAVAILABLE_CLASSES


def _sqlstate(exc: BaseException) -> object:
    # asyncpg's own errors carry it; SQLAlchemy's wrapper keeps the driver's in ``orig``,
    # whose adapter class keeps asyncpg's as its cause.
    for candidate in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        if candidate is None:
            continue
        code = getattr(candidate, "sqlstate", None)
        if code is None:
            code = getattr(getattr(candidate, "__cause__", None), "sqlstate", None)
        if code is not None:
            return code
    return None


def is_transient(exc: BaseException) -> bool:
    """Whether the server cancelled ``exc``'s transaction for another's sake (a retry is
    correct); checked before ``is_unavailable``, which a driver's class could also match."""
    if isinstance(exc, TransientError):
        return True
    return _sqlstate(exc) in _TRANSIENT_CODES


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot answer now (a 503, not a 500)."""
    if isinstance(exc, (DatabaseUnavailableError, *_UNAVAILABLE)):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return unavailable_sqlstate(_sqlstate(exc))


@contextmanager
def map_db_errors() -> Iterator[None]:
    try:
        yield
    except (DatabaseUnavailableError, TransientError):
        raise
    except Exception as exc:
        if is_transient(exc):
            raise TransientError(f"transaction cancelled, retry: {_describe(exc)}") from exc
        if not is_unavailable(exc):
            raise
        raise DatabaseUnavailableError(f"database unavailable: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    code = _sqlstate(exc)
    name = type(getattr(exc, "orig", None) or exc).__name__
    return f"{name} ({code})" if isinstance(code, str) else name
