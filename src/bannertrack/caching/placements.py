"""``CachedPlacements``: the ``PlacementStore`` with each placement's serve candidates
cached, so a warm ``GET /p/{id}`` reads no database.

``placement:{id}`` holds the placement and its active banners with weights
(``Candidates``); ``None`` (no such placement) is cached too. It is dropped, through the
same ``Invalidation`` as every banner key (versioned locally, then spread by the bus and
awaited), by:

- the placement's own writes (create, update, delete, a new banner list): its key;
- every banner update and delete (``CachedRepository``): the whole ``placement:`` prefix,
  since a banner may sit in any placement. Banner writes are rare next to serves, and a
  prefix drop costs one reload per placement in use.

So once such a write has returned, no serve here (nor, once the bus delivered, on another
instance) picks from the state before it. Schedule, targeting and caps are judged per
request from the cached banners (``placements.choice``): the passing of time needs no
invalidation. Lists, banner lists and statistics are read from the database, uncached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from bannertrack.cache import Cache
from bannertrack.caching import keys as cache_keys
from bannertrack.caching.read_through import read_through
from bannertrack.models import (
    Candidates,
    Placement,
    PlacementBanner,
    PlacementBanners,
    PlacementCreate,
    PlacementPage,
    PlacementStats,
    PlacementUpdate,
)
from bannertrack.repository import PlacementStore

Invalidate = Callable[[Iterable[str], Iterable[str]], Awaitable[int]]
T = TypeVar("T")


class ServingRead(Protocol):
    """A read that serves a visitor (``CachedRepository.serving_read``): stale-if-error."""

    async def __call__(self, key: str, load: Callable[[], Awaitable[T]], ttl: float) -> T: ...


class CachedPlacements:
    def __init__(
        self,
        inner: PlacementStore,
        cache: Cache,
        invalidate: Invalidate,
        ttl: float = 300.0,
        *,
        serving: ServingRead | None = None,
    ) -> None:
        self.inner = inner
        self.cache = cache
        self._invalidate = invalidate
        self._ttl = ttl
        # With ``serving`` (the service's), a serve is answered from the last candidates
        # the cache held while the database cannot answer (stale-if-error, docs/caching.md).
        self._serving = serving

    async def candidates(self, placement_id: int) -> Candidates | None:
        key = cache_keys.placement_key(placement_id)

        def load() -> Awaitable[Candidates | None]:
            return self.inner.candidates(placement_id)

        if self._serving is not None:
            return await self._serving(key, load, self._ttl)
        return await read_through(self.cache, key, load, self._ttl)

    async def _drop(self, placement_id: int) -> None:
        await self._invalidate((cache_keys.placement_key(placement_id),), ())

    async def create_placement(self, data: PlacementCreate) -> Placement:
        placement = await self.inner.create_placement(data)
        await self._drop(placement.id)  # a cached "no such placement" for this id
        return placement

    async def update_placement(self, placement_id: int, data: PlacementUpdate) -> Placement | None:
        try:
            return await self.inner.update_placement(placement_id, data)
        finally:
            await self._drop(placement_id)

    async def delete_placement(self, placement_id: int) -> bool:
        try:
            return await self.inner.delete_placement(placement_id)
        finally:
            # Its counts are gone too: so is every breakdown by placement.
            await self._invalidate(
                (cache_keys.placement_key(placement_id),),
                (cache_keys.prefix(cache_keys.BREAKDOWN),),
            )

    async def set_placement_banners(
        self, placement_id: int, banners: Sequence[PlacementBanner]
    ) -> PlacementBanners | None:
        try:
            return await self.inner.set_placement_banners(placement_id, banners)
        finally:
            await self._drop(placement_id)

    async def get_placement(self, placement_id: int) -> Placement | None:
        return await self.inner.get_placement(placement_id)

    async def list_placements(self, offset: int, limit: int) -> PlacementPage:
        return await self.inner.list_placements(offset, limit)

    async def placement_banners(self, placement_id: int) -> PlacementBanners | None:
        return await self.inner.placement_banners(placement_id)

    async def placement_stats(
        self, placement_id: int, start: datetime, end: datetime
    ) -> PlacementStats | None:
        return await self.inner.placement_stats(placement_id, start, end)
