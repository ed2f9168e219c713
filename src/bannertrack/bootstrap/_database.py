"""The database adapter opened (and migrated) for the service, and its health probe."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from bannertrack.config import Settings
from bannertrack.db.engine import DbTimeouts, create_engine
from bannertrack.db.migrate import upgrade
from bannertrack.db.probe import WriteProbe
from bannertrack.db.repository import SqlRepository
from bannertrack.timeutil import utcnow


@dataclass(frozen=True, slots=True)
class DatabaseProbe:
    """The ``StorageProbe`` of ``/healthz``: a read, and a rate-limited write."""

    database: SqlRepository
    writes: WriteProbe

    @property
    def dialect(self) -> str:
        return self.database.dialect

    async def ping(self) -> None:
        await self.database.ping()

    async def write_error(self) -> str | None:
        return await self.writes.check()


@asynccontextmanager
async def open_database(
    settings: Settings,
    *,
    migrate: bool | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> AsyncIterator[SqlRepository]:
    """The database adapter, migrated first when ``migrate`` (default: auto_migrate).

    ``clock`` dates what it writes: the demo loader dates its banners in the past.
    """
    timeouts = DbTimeouts(
        statement=settings.db_timeout,
        connect=settings.db_connect_timeout,
        pool=settings.db_pool_timeout,
    )
    database = SqlRepository(
        create_engine(settings.database_url, pool_size=settings.db_pool_size, timeouts=timeouts),
        clock=clock,
        dedup_window=settings.dedup_window,
        breakdown_top_n=settings.breakdown_top_n,
    )
    try:
        if settings.auto_migrate if migrate is None else migrate:
            await upgrade(database.engine)
        yield database
    finally:
        await database.close()
