"""Apply Alembic migrations programmatically, from the CLI or at API start-up."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bannertrack.db.errors import map_db_errors


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(files("bannertrack.db") / "migrations"))
    return cfg


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    with map_db_errors():
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    with map_db_errors():
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
