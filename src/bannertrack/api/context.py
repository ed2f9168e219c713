"""Everything a request handler needs, built once per process at start-up."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from bannertrack import bots
from bannertrack.cache import RedisTier
from bannertrack.cached_repository import CachedRepository, CachePolicy
from bannertrack.config import Settings
from bannertrack.db.engine import DbTimeouts
from bannertrack.db.migrate import upgrade
from bannertrack.db.probe import WriteProbe
from bannertrack.db.repository import SqlRepository
from bannertrack.impressions import ImpressionBatcher
from bannertrack.ingest import ClickIngest
from bannertrack.invalidation import Bus, open_cache_stack
from bannertrack.logs import set_fault_interval
from bannertrack.metrics import Metrics
from bannertrack.privacy import IPNetwork, VisitorHasher, parse_networks
from bannertrack.repository import Repository
from bannertrack.retention import Retention
from bannertrack.salt_key import load_salt_key, sealed_salt_loader

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
    impressions: ImpressionBatcher
    retention: Retention
    write_probe: WriteProbe
    bus: Bus | None = None  # cross-instance invalidation; None on single-process SQLite


def cache_policy(settings: Settings) -> CachePolicy:
    """The cache policy as configured; ``CachedRepository`` takes the value, not settings."""
    return CachePolicy(
        banner_ttl=settings.cache_ttl_banner,
        click_stats_ttl=settings.cache_ttl_click_stats,
        banner_stats_ttl=settings.cache_ttl_banner_stats,
        top_banners_ttl=settings.cache_ttl_top_banners,
        impressions_refresh=settings.impressions_refresh,
        breakdown_ttl=settings.cache_ttl_breakdown,
    )


@asynccontextmanager
async def open_context(settings: Settings) -> AsyncIterator[AppContext]:
    salt_key = load_salt_key(settings.salt_key, settings.salt_key_file)
    set_fault_interval(settings.log_fault_interval)
    async with AsyncExitStack() as stack:
        database = SqlRepository.from_url(
            settings.database_url,
            pool_size=settings.db_pool_size,
            dedup_window=settings.dedup_window,
            breakdown_top_n=settings.breakdown_top_n,
            timeouts=DbTimeouts(
                statement=settings.db_timeout,
                connect=settings.db_connect_timeout,
                pool=settings.db_pool_timeout,
            ),
        )
        stack.push_async_callback(database.close)
        if settings.auto_migrate:
            await upgrade(database.engine)

        repository: Repository = database
        cached: CachedRepository | None = None
        bus: Bus | None = None
        tier: RedisTier | None = None
        if settings.cache_enabled:
            # L1, plus the Redis L2 tier and the invalidation bus when configured.
            tiers = await open_cache_stack(settings, database.engine, stack)
            bus, tier = tiers.bus, tiers.tier
            cached = CachedRepository(
                database,
                tiers.cache,
                cache_policy(settings),
                on_invalidate=tiers.on_invalidate,
            )
            await cached.start()
            stack.push_async_callback(cached.stop)
            repository = cached

        metrics = Metrics(
            cache_stats=(lambda: cached.cache.stats()) if cached is not None else lambda: None,
            db_queries=lambda: database.queries.count,
            bus_stats=lambda: bus.stats() if bus is not None else None,
            tier_counters=lambda: tier.counters if tier is not None else None,
        )
        # Clicks go through the cached repository: it invalidates once per batch,
        # after the commit and before the batch's clicks are acknowledged.
        ingest = ClickIngest(
            repository,
            on_batch=metrics.on_batch,
            max_batch=settings.ingest_max_batch,
            max_wait=settings.ingest_max_wait,
            max_queue=settings.ingest_max_queue,
        )
        await ingest.start()
        stack.push_async_callback(ingest.stop)  # runs first: drains before the DB closes
        impressions = ImpressionBatcher(
            repository,
            interval=settings.impression_flush_interval,
            on_flush=metrics.impressions_recorded.inc,
        )
        await impressions.start()
        stack.push_async_callback(impressions.stop)  # written before the DB closes
        retention = Retention(
            database,
            retention_days=settings.retention_days,
            dedup_window=settings.dedup_window,
            interval=settings.retention_interval,
            batch=settings.retention_batch,
        )
        await retention.start()
        stack.push_async_callback(retention.stop)
        bots.warm_up()  # compile the crawler patterns now, not on the first click

        log.info(
            "bannertrack ready: database=%s cache=%s bus=%s",
            database.engine.dialect.name,
            "on" if cached else "off",
            bus.kind if bus is not None else "none",
        )
        yield AppContext(
            settings=settings,
            database=database,
            repository=repository,
            cached=cached,
            ingest=ingest,
            metrics=metrics,
            # The day's salt is shared through the database, sealed under a key that is
            # not in it, so every instance keys alike and a copy of the data cannot.
            hasher=VisitorHasher(sealed_salt_loader(database.sealed_salt, salt_key)),
            trusted_proxies=parse_networks(settings.trusted_proxies),
            bus=bus,
            impressions=impressions,
            retention=retention,
            write_probe=WriteProbe(database.engine, settings.health_probe_interval),
        )
