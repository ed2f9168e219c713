"""Warming: load what traffic will ask for first, without evicting what it already loaded.

Loads go through ``CachedRepository`` like any read (single-flight, versioned, counted),
so a warm that races a write can never store the state before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from bannertrack.cache import Cache
from bannertrack.caching import keys as cache_keys
from bannertrack.models import BannerPage


class _Listing(Protocol):
    async def list_banners(self, offset: int, limit: int) -> BannerPage: ...


class Warmable(Protocol):
    """What warming needs of ``CachedRepository``: its cache, the repository behind it,
    and the two cached reads it warms (a Protocol, so this module does not import the
    class that calls it)."""

    @property
    def cache(self) -> Cache: ...

    @property
    def inner(self) -> _Listing: ...

    async def banner_with_stats(self, banner_id: int) -> object: ...

    async def top_banners(self, limit: int) -> object: ...


async def warm_cache(
    cached: Warmable,
    top_limits: Sequence[int] = (5, 10, 20, 50, 100),
    concurrency: int = 16,
) -> int:
    """Load active banners, their stats and the common top lists; count new entries.

    Loads go through the cache like any read (single-flight, versioned), and add at
    most a third of the free capacity in entries (each banner is three: its
    ``banner_keys``), so warming never evicts what traffic already loaded.
    """
    budget = max(0, (cached.cache.stats().max_entries - len(cached.cache)) // 3)
    limits = tuple(top_limits)[:budget]
    wanted = (budget - len(limits)) // len(cache_keys.banner_keys(0))
    ids: list[int] = []
    offset = 0
    while len(ids) < wanted:
        page = await cached.inner.list_banners(offset, 500)
        ids += [b.id for b in page.items if b.active]
        offset += len(page.items)
        if offset >= page.total or not page.items:
            break
    ids = ids[:wanted]
    keys = [k for i in ids for k in cache_keys.banner_keys(i)]
    keys += [cache_keys.top_banners_key(n) for n in limits]
    missing = {k for k in keys if k not in cached.cache}
    gate = asyncio.Semaphore(concurrency)

    async def one(banner_id: int) -> None:
        async with gate:
            await cached.banner_with_stats(banner_id)

    await asyncio.gather(*(one(i) for i in ids), *(cached.top_banners(n) for n in limits))
    return sum(1 for k in missing if k in cached.cache)
