"""Everything a request handler needs, built once per process at start-up."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from bannertrack.cache import MemoryCache
from bannertrack.cached_repository import CachedRepository, CachePolicy
from bannertrack.config import Settings
from bannertrack.db.migrate import upgrade
from bannertrack.db.repository import SqlRepository
from bannertrack.ingest import ClickIngest
from bannertrack.metrics import Metrics
from bannertrack.privacy import IPNetwork, VisitorHasher, parse_networks
from bannertrack.repository import Repository

log = logging.getLogger("bannertrack")


@dataclass(slots=True)
class AppContext:
    settings: Settings
    database: SqlRepository
    repository: Repository
    cached: CachedRepository | None
    ingest: ClickIngest
    metrics: Metrics
    hasher: VisitorHasher
    trusted_proxies: tuple[IPNetwork, ...]


@asynccontextmanager
async def open_context(settings: Settings) -> AsyncIterator[AppContext]:
    async with AsyncExitStack() as stack:
        database = SqlRepository.from_url(settings.database_url, pool_size=settings.db_pool_size)
        stack.push_async_callback(database.close)
        if settings.auto_migrate:
            await upgrade(database.engine)

        repository: Repository = database
        cached: CachedRepository | None = None
        if settings.cache_enabled:
            cache = MemoryCache(
                max_entries=settings.cache_max_entries,
                default_ttl=settings.cache_ttl_banner,
                cleanup_interval=settings.cache_cleanup_interval,
            )
            await cache.start()
            stack.push_async_callback(cache.stop)
            cached = CachedRepository(database, cache, CachePolicy.from_settings(settings))
            repository = cached

        # Clicks go through the cached repository: it invalidates once per batch,
        # after the commit and before the batch's clicks are acknowledged.
        metrics = Metrics(
            cache_stats=(lambda: cached.cache.stats()) if cached is not None else lambda: None,
            db_queries=lambda: database.queries.count,
        )
        ingest = ClickIngest(
            repository,
            on_batch=metrics.on_batch,
            max_batch=settings.ingest_max_batch,
            max_wait=settings.ingest_max_wait,
            max_queue=settings.ingest_max_queue,
        )
        await ingest.start()
        stack.push_async_callback(ingest.stop)  # runs first: drains before the DB closes

        log.info(
            "bannertrack ready: database=%s cache=%s",
            database.engine.dialect.name,
            "on" if cached else "off",
        )
        yield AppContext(
            settings=settings,
            database=database,
            repository=repository,
            cached=cached,
            ingest=ingest,
            metrics=metrics,
            hasher=VisitorHasher(),
            trusted_proxies=parse_networks(settings.trusted_proxies),
        )
