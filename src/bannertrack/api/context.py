"""Everything a request handler needs, built once per process at start-up."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bannertrack.config import Settings
from bannertrack.db.migrate import upgrade
from bannertrack.db.repository import SqlRepository
from bannertrack.ingest import ClickIngest
from bannertrack.privacy import IPNetwork, VisitorHasher, parse_networks
from bannertrack.repository import Repository

log = logging.getLogger("bannertrack")


@dataclass(slots=True)
class AppContext:
    settings: Settings
    database: SqlRepository
    repository: Repository
    ingest: ClickIngest
    hasher: VisitorHasher
    trusted_proxies: tuple[IPNetwork, ...]


@asynccontextmanager
async def open_context(settings: Settings) -> AsyncIterator[AppContext]:
    database = SqlRepository.from_url(settings.database_url, pool_size=settings.db_pool_size)
    if settings.auto_migrate:
        await upgrade(database.engine)
    repository: Repository = database
    ingest = ClickIngest(repository)
    ctx = AppContext(
        settings=settings,
        database=database,
        repository=repository,
        ingest=ingest,
        hasher=VisitorHasher(),
        trusted_proxies=parse_networks(settings.trusted_proxies),
    )
    await ingest.start()
    try:
        yield ctx
    finally:
        await ingest.stop()
        await database.close()
