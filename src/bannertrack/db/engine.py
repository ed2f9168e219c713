"""Build the async engine for a database URL; nothing is built at import time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import URL, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bannertrack.db.urls import async_url


class QueryCounter:
    """Counts statements sent to the database: the figure the cache exists to cut."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_: Any) -> None:
        self.count += 1


@dataclass(frozen=True, slots=True)
class DbTimeouts:
    """Bounds of every database wait, so a frozen database answers 503 in seconds.

    ``statement``: one statement (SQLite's busy timeout; on PostgreSQL the server's
    ``statement_timeout``, and asyncpg's command timeout, client side, ``client_grace``
    seconds later, so it holds even when the server stops answering); ``connect``:
    opening a connection; ``pool``: waiting for a pooled connection when all are busy.

    Why the server ends a statement first: the click batch is one autocommit statement
    (``db.pg_clicks``). Cancelled by the server, it is rolled back and the client hears
    so; given up on by the client, it could still commit after the clicks were answered
    503, and their retry would store them twice.
    """

    statement: float = 5.0
    connect: float = 3.0
    pool: float = 3.0
    client_grace: float = 1.0


def create_engine(
    database_url: str, *, pool_size: int = 10, timeouts: DbTimeouts | None = None
) -> AsyncEngine:
    url = async_url(database_url)
    limits = timeouts or DbTimeouts()
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": limits.statement})
        busy_ms = int(limits.statement * 1000)
        event.listen(
            engine.sync_engine, "connect", lambda conn, rec: _sqlite_pragmas(conn, rec, busy_ms)
        )
        return engine
    return _postgres_engine(url, pool_size, limits)


def count_queries(engine: AsyncEngine) -> QueryCounter:
    counter = QueryCounter()
    event.listen(engine.sync_engine, "before_cursor_execute", counter)
    return counter


def _postgres_engine(url: URL, pool_size: int, limits: DbTimeouts) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=limits.pool,
        # A dead or frozen server fails a request in seconds instead of hanging it.
        connect_args={
            "timeout": limits.connect,
            "command_timeout": limits.statement + limits.client_grace,
            "server_settings": {"statement_timeout": str(int(limits.statement * 1000))},
        },
    )
    event.listen(engine.sync_engine, "checkout", _drop_closed)
    return engine


def _drop_closed(_dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    """Hand out no pooled connection the server has closed (restart, failover, cut proxy).

    asyncpg learns of a closed socket from the event loop, without a round trip, so this
    check is free. ``pool_pre_ping`` did the same job with three round trips on every
    checkout (BEGIN, an empty query, ROLLBACK): on the click path that was a third of
    each batch's round trips. Raising ``DisconnectionError`` makes the pool drop the
    connection and check out (or open) another one.
    """
    driver = record.driver_connection
    if driver is None or driver.is_closed():
        raise DisconnectionError("pooled PostgreSQL connection was closed by the server")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any, busy_ms: int) -> None:
    # WAL lets readers run while a click batch commits; synchronous=FULL makes an
    # acknowledged click survive a power cut, not only a crash; foreign keys make a banner's
    # delete cascade to its totals and impressions as on PostgreSQL; secure_delete overwrites
    # deleted rows (yesterday's salt, expired clicks) instead of leaving them in free pages.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA secure_delete=ON")
    cur.execute(f"PRAGMA busy_timeout={busy_ms}")
    cur.close()
