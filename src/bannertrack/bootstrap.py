"""The one place the service is assembled, for the API, the CLI and the benchmarks.

``open_service(settings)`` builds, starts and (on exit) stops, in reverse order:

    database (SqlRepository; migrations when auto_migrate)
    cache stack: L1 ─ optional Redis L2 tier ─ invalidation bus   (when cache_enabled)
    CachedRepository over the database, with a CachePolicy built from the settings
    ClickIngest, ImpressionBatcher, Retention (background writers and cleanup)
    VisitorHasher, trusted proxies, Metrics

Each consumer gets the narrow protocol it needs (``bannertrack.repository``), never the
concrete classes: nothing outside this module and ``db/`` names ``SqlRepository``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from bannertrack import bots
from bannertrack.cache import MemoryCache, RedisTier, StructCodec, TieredCache
from bannertrack.cached_repository import CachedRepository, CachePolicy
from bannertrack.config import Settings
from bannertrack.db.engine import DbTimeouts, create_engine
from bannertrack.db.migrate import upgrade
from bannertrack.db.probe import WriteProbe
from bannertrack.db.repository import SqlRepository
from bannertrack.errors import InvalidInputError
from bannertrack.impressions import ImpressionBatcher
from bannertrack.ingest import ClickIngest
from bannertrack.invalidation import (
    Apply,
    Bus,
    OnState,
    PostgresBus,
    RedisBus,
    apply_to,
    asyncpg_connect_args,
)
from bannertrack.logs import set_fault_interval
from bannertrack.metrics import Metrics
from bannertrack.models import Banner, BannerWithStats, ClickStats, TopBanners
from bannertrack.privacy import IPNetwork, VisitorHasher, parse_networks
from bannertrack.repository import (
    CacheAdmin,
    ClickArchive,
    Housekeeping,
    Repository,
    StorageProbe,
)
from bannertrack.retention import Retention
from bannertrack.salt_key import load_salt_key, sealed_salt_loader
from bannertrack.timeutil import utcnow

log = logging.getLogger("bannertrack")

CACHED_TYPES = (Banner, ClickStats, BannerWithStats, TopBanners)
"""What ``CachedRepository`` stores (each also as ``None``): the L2 codec's vocabulary."""


@dataclass(frozen=True, slots=True)
class Service:
    """A running service: each part typed by what its consumers may do with it."""

    settings: Settings
    repository: Repository  # the cached one when the cache is on
    archive: ClickArchive
    housekeeping: Housekeeping
    storage: StorageProbe
    cache_admin: CacheAdmin | None  # None when the cache is off
    ingest: ClickIngest
    impressions: ImpressionBatcher
    retention: Retention
    metrics: Metrics
    hasher: VisitorHasher
    trusted_proxies: tuple[IPNetwork, ...]
    bus: Bus | None  # cross-instance invalidation; None on single-process SQLite


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


@dataclass(frozen=True, slots=True)
class _DatabaseProbe:
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


@asynccontextmanager
async def open_service(settings: Settings) -> AsyncIterator[Service]:
    salt_key = load_salt_key(settings.salt_key, settings.salt_key_file)
    set_fault_interval(settings.log_fault_interval)
    async with AsyncExitStack() as stack:
        database = await stack.enter_async_context(open_database(settings))
        parts = await _open_cache(settings, database, stack) if settings.cache_enabled else None
        cached = parts.cached if parts is not None else None
        bus = parts.bus if parts is not None else None
        tier = parts.tier if parts is not None else None
        repository: Repository = cached if cached is not None else database
        metrics = Metrics(
            cache_stats=cached.stats if cached is not None else lambda: None,
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
            database.dialect,
            "on" if cached else "off",
            bus.kind if bus is not None else "none",
        )
        yield Service(
            settings=settings,
            repository=repository,
            archive=database,
            housekeeping=database,
            storage=_DatabaseProbe(
                database, WriteProbe(database.engine, settings.health_probe_interval)
            ),
            cache_admin=cached,
            ingest=ingest,
            impressions=impressions,
            retention=retention,
            metrics=metrics,
            # The day's salt is shared through the database, sealed under a key that is
            # not in it, so every instance keys alike and a copy of the data cannot.
            hasher=VisitorHasher(sealed_salt_loader(database.sealed_salt, salt_key)),
            trusted_proxies=parse_networks(settings.trusted_proxies),
            bus=bus,
        )


# the cache stack -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CacheParts:
    cached: CachedRepository
    tier: RedisTier | None
    bus: Bus | None


async def _open_cache(
    settings: Settings, database: SqlRepository, stack: AsyncExitStack
) -> _CacheParts:
    """L1 alone, or L1 + L2 + bus, then the CachedRepository; ``stack`` stops them."""
    check_topology(settings)
    l1 = MemoryCache(
        max_entries=settings.cache_max_entries,
        default_ttl=settings.cache_ttl_banner,
        cleanup_interval=settings.cache_cleanup_interval,
    )
    await l1.start()
    stack.push_async_callback(l1.stop)
    tier = None
    if settings.redis_url:
        tier = RedisTier.from_url(
            settings.redis_url,
            StructCodec(CACHED_TYPES),
            timeout=settings.redis_timeout,
            prefix=settings.redis_prefix,
        )
        stack.push_async_callback(tier.close)
    bus: Bus | None = None
    tiered = TieredCache(
        l1,
        tier,
        default_ttl=settings.cache_ttl_banner,
        degraded_ttl=settings.bus_degraded_ttl,
        is_degraded=lambda: bus is not None and bus.degraded,
    )

    def on_state(connected: bool) -> None:
        if connected:
            # Up again: invalidations may have been missed while down.
            tiered.clear()
        else:
            # Down: from now on we may miss invalidations. What L1 holds was current a
            # moment ago; it stays servable for the degraded TTL rather than being
            # dropped, which matters when the bus is down because the database is
            # (PostgreSQL's LISTEN/NOTIFY): no write can happen then, and cached reads
            # are all the instance can still answer.
            tiered.cap_ttl(settings.bus_degraded_ttl)

    bus = build_bus(settings, database.engine, tier, apply_to(tiered), on_state)
    if bus is not None:
        await bus.start()
        stack.push_async_callback(bus.stop)
    cached = CachedRepository(
        database,
        tiered if bus is not None else l1,  # one process: nothing to tier or tell
        cache_policy(settings),
        on_invalidate=bus.publish if bus is not None else None,
    )
    await cached.start()
    stack.push_async_callback(cached.stop)
    return _CacheParts(cached, tier if bus is not None else None, bus)


def build_bus(
    settings: Settings,
    engine: AsyncEngine,
    tier: RedisTier | None,
    apply: Apply,
    on_state: OnState | None = None,
) -> Bus | None:
    """Redis pub/sub with a tier, else LISTEN/NOTIFY on PostgreSQL, else no bus."""
    heartbeat, backoff_max = settings.bus_heartbeat, settings.bus_backoff_max
    if tier is not None:
        return RedisBus(tier, apply, on_state, heartbeat=heartbeat, backoff_max=backoff_max)
    if engine.dialect.name == "postgresql":
        connect = asyncpg_connect_args(engine)
        return PostgresBus(connect, apply, on_state, heartbeat=heartbeat, backoff_max=backoff_max)
    return None


def check_topology(settings: Settings) -> None:
    """Refuse a set-up whose caches could not be kept consistent.

    Several workers on SQLite without Redis would each keep their own cache with nothing
    to carry invalidations between them: a write through one worker would leave the
    others serving the old state for a whole TTL.
    """
    if (
        settings.workers > 1
        and settings.cache_enabled
        and not settings.redis_url
        and settings.database_url.partition(":")[0].split("+")[0] == "sqlite"
    ):
        raise InvalidInputError(
            f"{settings.workers} workers on SQLite need BANNERTRACK_REDIS_URL: without it "
            "nothing carries cache invalidations between workers. Set it, run one worker, "
            "use PostgreSQL (LISTEN/NOTIFY is then the bus), or turn the cache off."
        )
