"""Build the cache an instance serves from: L1 alone, or L1 + L2 + bus, per the settings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bannertrack.cache import Cache, MemoryCache, RedisTier, StructCodec, TieredCache
from bannertrack.config import Settings
from bannertrack.errors import InvalidInputError
from bannertrack.invalidation._base import Apply, Bus, OnState
from bannertrack.invalidation._postgres import PostgresBus, asyncpg_connect_args
from bannertrack.invalidation._redis import RedisBus
from bannertrack.models import Banner, BannerWithStats, ClickStats, TopBanners

CACHED_TYPES = (Banner, ClickStats, BannerWithStats, TopBanners)
"""What ``CachedRepository`` stores (each also as ``None``): the L2 codec's vocabulary."""

Hook = Callable[[Sequence[str], Sequence[str]], Awaitable[None]]


@dataclass(slots=True)
class CacheStack:
    cache: MemoryCache | TieredCache
    tier: RedisTier | None
    bus: Bus | None

    @property
    def on_invalidate(self) -> Hook | None:
        return self.bus.publish if self.bus is not None else None


async def open_cache_stack(
    settings: Settings, engine: AsyncEngine, stack: AsyncExitStack
) -> CacheStack:
    """Start L1, then L2 and the bus if configured; ``stack`` stops them in reverse."""
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

    bus = build_bus(settings, engine, tier, apply_to(tiered), on_state)
    if bus is None:
        return CacheStack(l1, None, None)  # one process, nothing to tier or tell
    await bus.start()
    stack.push_async_callback(bus.stop)
    return CacheStack(tiered, tier, bus)


def apply_to(cache: Cache) -> Apply:
    """How a message from another instance lands in the local cache (L1 only)."""

    def apply(keys: Sequence[str], prefixes: Sequence[str]) -> None:
        for key in keys:
            cache.delete(key)
        for prefix in prefixes:
            if prefix == "":
                cache.clear()
            else:
                cache.delete_prefix(prefix)

    return apply


def build_bus(
    settings: Settings,
    engine: AsyncEngine,
    tier: RedisTier | None,
    apply: Apply,
    on_state: OnState | None = None,
) -> Bus | None:
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
