"""PostgreSQL: multi-row statements taking one array per column, sent to asyncpg.

The click batch (``db.pg_clicks``) builds its statements from ``insert_sql``.

Why not SQLAlchemy's executemany here: its "insertmanyvalues" renders one bind parameter
per value per row, runs Python bind processing for each, and produces a new SQL text for
every batch size, which asyncpg then prepares anew. On the click path that per-row work
was the largest single cost of a batch (docs/benchmarks.md, history: 1f2044b). Here each statement
takes one array per column (``unnest``): the text is the same for every batch size, so
asyncpg prepares it once per connection, and the rows travel as binary arrays encoded in
C. The statements run on the connection, and in the transaction, of the caller's
SQLAlchemy ``AsyncConnection``, so commit, rollback and pooling stay SQLAlchemy's.

Rows are inserted in the order given (``ORDER BY`` the array position), so rows are
locked, and sequence ids handed out, in that order, as with a ``VALUES`` list.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]


async def driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg connection under ``conn`` (its transaction is already open)."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection


def array_param(table: Table, column: str, n: int) -> str:
    """Parameter ``$n`` as an array of ``column``'s type."""
    return f"${n}::{table.c[column].type.compile(dialect=_PG)}[]"


@lru_cache(maxsize=32)
def insert_sql(
    table: Table, columns: tuple[str, ...], tail: str = "", first: int = 1, where: str = ""
) -> str:
    """``INSERT INTO table (columns) <rows from one array per column> [where] tail``.

    The arrays are parameters ``$first`` onwards, one per column in order (``first`` > 1
    when the statement is part of a larger one, as in ``db.pg_clicks``); ``where`` is a
    ``WHERE`` clause on the rows (their columns by name).
    """
    quoted = ", ".join(f'"{c}"' for c in columns)
    arrays = ", ".join(array_param(table, c, i) for i, c in enumerate(columns, first))
    rows = f"SELECT * FROM unnest({arrays}) WITH ORDINALITY AS u({quoted}, _pos)"
    return (
        f"INSERT INTO {table.name} ({quoted}) SELECT {quoted} FROM ({rows}) AS s"
        f"{' ' + where if where else ''} ORDER BY _pos {tail}"
    ).rstrip()


def announce(conn: AsyncConnection, sql: str, args: Sequence[Any]) -> None:
    """Tell SQLAlchemy's listeners (the query counter behind bannertrack_db_queries_total)
    of a statement sent to asyncpg directly, which SQLAlchemy does not see, as if it had
    run it."""
    sync = conn.sync_connection
    if sync is not None:
        sync.dispatch.before_cursor_execute(sync, None, sql, args, None, False)


async def fetch(conn: AsyncConnection, apg: Any, sql: str, args: Sequence[Any]) -> list[Any]:
    """Run ``sql`` with ``args`` on ``apg`` (``conn``'s asyncpg connection); its rows."""
    announce(conn, sql, args)
    return list(await apg.fetch(sql, *args))
