"""The migrations build exactly the schema of ``db/tables.py``, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from bannertrack.db.engine import create_engine
from bannertrack.db.migrate import alembic_config, upgrade
from bannertrack.db.tables import metadata


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


def _columns(conn: Connection, table: str) -> set[str]:
    return {col["name"] for col in inspect(conn).get_columns(table)}


def _downgrade(conn: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.downgrade(cfg, revision)


async def test_migrations_match_the_tables_and_0004_downgrades_and_upgrades_again(
    unmigrated_url: str,
) -> None:
    engine = create_engine(unmigrated_url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade, "0003")
        async with engine.connect() as conn:
            columns = await conn.run_sync(lambda c: _columns(c, "clicks"))
            salts = await conn.run_sync(lambda c: _columns(c, "visitor_salts"))
        assert "ip_prefix" in columns and salts == {"day", "salt"}
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()
