"""The cache stack of one instance: L1 alone, or L1 + the Redis L2 tier + the bus.

``check_topology`` refuses a set-up whose caches could not be kept consistent;
``open_cache`` builds what the settings ask for, under the ``CachedRepository`` with its
``CachePolicy``, and registers every stop on the caller's exit stack.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bannertrack.cache import MemoryCache, RedisTier, StructCodec, TieredCache
from bannertrack.caching import keys as cache_keys
from bannertrack.caching.bus import (
    Apply,
    Bus,
    OnState,
    PostgresBus,
    RedisBus,
    apply_to,
    asyncpg_connect_args,
)
from bannertrack.caching.cached_repository import CachedRepository
from bannertrack.caching.policy import CachePolicy
from bannertrack.config import Settings
from bannertrack.errors import InvalidInputError
from bannertrack.models import Banner, BannerWithStats, Candidates, ClickStats, TopBanners
from bannertrack.outage import DatabaseState
from bannertrack.repository import Repository

CACHED_TYPES = (Banner, ClickStats, BannerWithStats, TopBanners, Candidates)
"""What ``CachedRepository`` and ``CachedPlacements`` store (each also as ``None``): the
L2 codec's vocabulary."""


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
class CacheParts:
    cached: CachedRepository
    tier: RedisTier | None
    bus: Bus | None


async def open_cache(
    settings: Settings,
    database: Repository,
    engine: AsyncEngine,
    stack: AsyncExitStack,
    state: DatabaseState | None = None,
) -> CacheParts:
    """L1 alone, or L1 + L2 + bus, then the CachedRepository; ``stack`` stops them."""
    check_topology(settings)
    l1 = MemoryCache(
        max_entries=settings.cache_max_entries,
        default_ttl=settings.cache_ttl_banner,
        cleanup_interval=settings.cache_cleanup_interval,
        stale_for=settings.cache_stale_if_error,
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
        # banner_stats is composed from banner:{id} and click_stats:{id}, both in L2 already.
        local_only=(cache_keys.prefix(cache_keys.BANNER_STATS),),
    )

    on_state = _on_bus_state(tiered, settings.bus_degraded_ttl)
    bus = build_bus(settings, engine, tier, apply_to(tiered), on_state)
    if bus is not None:
        await bus.start()
        stack.push_async_callback(bus.stop)
    cached = CachedRepository(
        database,
        tiered if bus is not None else l1,  # one process: nothing to tier or tell
        cache_policy(settings),
        on_invalidate=bus.publish if bus is not None else None,
        carrier=bus,
        database=state,
        stale_wait=settings.cache_stale_wait,
    )
    await cached.start()
    stack.push_async_callback(cached.stop)
    return CacheParts(cached, tier if bus is not None else None, bus)


def _on_bus_state(tiered: TieredCache, degraded_ttl: float) -> OnState:
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
            tiered.cap_ttl(degraded_ttl)

    return on_state


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
