"""Every way PostgreSQL says "not now" maps to ``DatabaseUnavailableError`` (503), never 500.

Real asyncpg and SQLAlchemy throughout: a real PostgreSQL refuses a role over its
connection limit (53300) and cancels a statement past its timeout (57014); a listener that
speaks PostgreSQL's start-up refuses as a server starting up (57P03) or shutting down
(57P01) does (``tests.support.pg_refusal``); a closed port refuses at the socket.
"""

from __future__ import annotations

import socket
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.support.pg_refusal import RefusingPostgres
from tests.support.services import PostgresFactory, pg_execute

from bannertrack.db.engine import DbTimeouts, create_engine
from bannertrack.db.errors import is_unavailable, map_db_errors
from bannertrack.db.repository import SqlRepository
from bannertrack.errors import DatabaseUnavailableError


async def _ping(url: str, timeouts: DbTimeouts | None = None) -> None:
    repo = SqlRepository(create_engine(url, timeouts=timeouts))
    try:
        await repo.ping()
    finally:
        await repo.close()


@pytest.mark.parametrize(
    ("sqlstate", "message"),
    [
        ("57P03", "the database system is starting up"),
        ("57P01", "terminating connection due to administrator command"),
        ("57P02", "terminating connection because of crash of another server process"),
        ("53300", "sorry, too many clients already"),
    ],
)
async def test_a_refusing_server_is_unavailable(sqlstate: str, message: str) -> None:
    async with RefusingPostgres(sqlstate, message) as port:
        with pytest.raises(DatabaseUnavailableError) as raised:
            await _ping(f"postgresql://bt@127.0.0.1:{port}/bt")
    assert sqlstate in str(raised.value)


async def test_a_closed_port_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DatabaseUnavailableError):
        await _ping(f"postgresql://bt@127.0.0.1:{port}/bt")


async def test_too_many_connections_for_a_role_is_unavailable(postgres: PostgresFactory) -> None:
    url = postgres.create()
    role = f"bt_full_{uuid.uuid4().hex[:8]}"
    pg_execute(url, f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    try:
        with pytest.raises(DatabaseUnavailableError) as raised:
            await _ping(make_url(url).set(username=role).render_as_string(hide_password=False))
        assert "53300" in str(raised.value)
    finally:
        postgres.drop(url)
        pg_execute(postgres.admin_url, f"DROP ROLE IF EXISTS {role}")


async def _execute(engine: AsyncEngine, sql: str) -> None:
    with map_db_errors():
        async with engine.connect() as conn:
            await conn.execute(text(sql))


async def test_a_statement_past_its_timeout_is_unavailable(postgres: PostgresFactory) -> None:
    url = postgres.create()
    engine = create_engine(url, timeouts=DbTimeouts(statement=0.2))
    try:
        with pytest.raises(DatabaseUnavailableError):
            await _execute(engine, "SELECT pg_sleep(2)")
    finally:
        await engine.dispose()
        postgres.drop(url)


async def test_a_broken_query_is_not_unavailable(postgres: PostgresFactory) -> None:
    """The negative control: a bug in a query stays an error of its own (a 500)."""
    url = postgres.create()
    engine = create_engine(url)
    try:
        for sql in ("SELECT * FROM no_such_table", "SELECT 1/0"):
            with pytest.raises(DBAPIError) as raised:
                await _execute(engine, sql)
            assert not is_unavailable(raised.value)
    finally:
        await engine.dispose()
        postgres.drop(url)
