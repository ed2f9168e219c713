"""``CachedRepository``: the cache policy (docs/caching.md) in front of any ``Repository``.

Keys and what each holds are defined in ``caching/keys.py``; their TTLs are the fields of
``CachePolicy`` (``caching/policy.py``). Banner lists, time-range series and the dashboard's
range figures are not cached: they read bounded rollup rows, and a range ending "now"
changes with every click.

Impressions arrive all the time (every page view), so they never invalidate anything:
the click counts of a ClickStats keep the invalidation of docs/caching.md, and its impression
count is laid over it at read time from an ``ImpressionView`` that one query per
refresh keeps current for every banner whose stats this instance serves. An impression
therefore shows in ClickStats at most flush interval + refresh after its pixel was
answered (1 s with the defaults; docs/counting.md), and a cache hit stays a dict lookup.

``None`` (no such banner) is cached too, so a flood of requests for a missing id costs
the database one query per TTL; creating a banner invalidates its id's keys.

Invalidation runs after the write has committed and before the write returns, and it is
versioned in the cache engine: a load that began before it never stores its result. So a
read that starts after a write has returned never sees the state before that write.
A click batch on PostgreSQL's bus sends the other instances' message inside the batch
(``Bus.carry``: NOTIFY is delivered with the commit), so only this instance's drop is
left after it (docs/scale-out.md).
On a write that fails half-way (the commit's outcome unknown) the keys are invalidated
all the same: dropping a good entry costs one reload, keeping a stale one breaks the
promise.

A cache that fails (a bug in it, or an L2 tier that is down) never fails a request: the
read falls back to the wrapped repository and the failure is logged.

Reads that serve visitors (the banner behind the tracking link, the pixel and placement
serves: ``_serving``) are stale-if-error: when the database cannot answer (an
``UnavailableError``), or has not answered within ``stale_wait`` seconds (no wait at all
while ``DatabaseState`` says it is down), the banner the cache last held is answered,
up to the cache's ``stale_for`` past its deadline. While the database answers, an entry
past its deadline is never served, and an invalidation removes the stale copy with the
entry, so a read after a returned write still sees that write.

Longer than 300 lines on purpose: one class that states the whole contract above, each
method a few lines over ``read_through`` and ``Invalidation``; the pieces with rules of
their own already live beside it (keys, policy, invalidation, warming, read-through,
impression view).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from bannertrack.cache import Cache, CacheStats
from bannertrack.caching import keys as cache_keys
from bannertrack.caching.impression_view import ImpressionView
from bannertrack.caching.invalidation import Invalidation, OnInvalidate
from bannertrack.caching.keys import PLACEMENT_PREFIX, TOP_BANNERS_PREFIX
from bannertrack.caching.policy import CachePolicy
from bannertrack.caching.read_through import read_through, serving
from bannertrack.caching.warming import warm_cache
from bannertrack.conversions.values import ConversionIn, ConversionTotals, Recorded
from bannertrack.errors import (
    InvalidInputError,
    NotFoundError,
    OutsideWindowError,
    UnavailableError,
)
from bannertrack.models import (
    Banner,
    BannerCreate,
    BannerPage,
    BannerUpdate,
    BannerWithStats,
    Breakdown,
    BreakdownCount,
    ClickIn,
    ClickStats,
    CountKind,
    Dimension,
    ImpressionCount,
    Interval,
    RangeTotals,
    RecordedClick,
    Series,
    TopBanners,
    TrafficSeries,
    with_impressions,
)
from bannertrack.outage import DatabaseState
from bannertrack.repository import Notify, NotifyingClicks, ReplayTarget, Repository
from bannertrack.timeutil import ceil_to, floor_to

log = logging.getLogger("bannertrack.cache")

T = TypeVar("T")


class NotifyCarrier(Protocol):
    """The bus, as a click batch sees it (``invalidation.Bus``)."""

    def carry(self, keys: Sequence[str], prefixes: Sequence[str]) -> Notify | None: ...

    def carried(self) -> None: ...


DAY = 86_400
# What a conversion changes, as whole namespaces: when its banner is not known.
_CONVERTED_PREFIXES = tuple(
    cache_keys.prefix(n)
    for n in (cache_keys.CLICK_STATS, cache_keys.BANNER_STATS, cache_keys.BREAKDOWN)
)


class CachedRepository:
    def __init__(
        self,
        inner: Repository,
        cache: Cache,
        policy: CachePolicy | None = None,
        *,
        on_invalidate: OnInvalidate | None = None,
        carrier: NotifyCarrier | None = None,
        database: DatabaseState | None = None,
        stale_wait: float = 0.2,
    ) -> None:
        self.inner = inner
        self.cache = cache
        self.policy = policy or CachePolicy()
        self.impressions_view = ImpressionView(
            inner.impressions, refresh=self.policy.impressions_refresh
        )
        self._invalidation = Invalidation(cache, on_invalidate)
        # A click batch's invalidation rides in the batch's own statement when the bus is
        # PostgreSQL's and the database can carry it (see record_clicks).
        self._carrier = carrier
        self._notifying: NotifyingClicks | None = (
            inner if isinstance(inner, NotifyingClicks) and inner.carries_notify else None
        )
        self.database = database or DatabaseState()
        self._stale_wait_s = stale_wait
        self._stale = serving(lambda exc: isinstance(exc, UnavailableError), self._stale_wait)

    # reads ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.impressions_view.start()

    async def stop(self) -> None:
        await self.impressions_view.stop()

    async def _cached(self, key: str, load: Callable[[], Awaitable[T]], ttl: float) -> T:
        return await read_through(self.cache, key, load, ttl)

    async def _serving(self, key: str, load: Callable[[], Awaitable[T]], ttl: float) -> T:
        """A read that serves a visitor: stale-if-error (see the module docstring).

        Placement serves read through here too: whatever a visitor's request needs from
        the database should be answerable from what the cache last held.
        """
        return await read_through(self.cache, key, self._watched(load), ttl, self._stale)

    async def serving_read(self, key: str, load: Callable[[], Awaitable[T]], ttl: float) -> T:
        """``_serving`` for the cached reads beside this class (``CachedPlacements``)."""
        return await self._serving(key, load, ttl)

    def _watched(self, load: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        """``load``, telling the shared ``DatabaseState`` whether the database answered."""
        state = self.database

        async def watched() -> T:
            try:
                value = await load()
            except UnavailableError as exc:
                state.failed(str(exc))
                raise
            state.answered()
            return value

        return watched

    def _stale_wait(self) -> float:
        return 0.0 if self.database.down else self._stale_wait_s

    async def get_banner(self, banner_id: int) -> Banner | None:
        return await self._serving(
            cache_keys.banner_key(banner_id),
            lambda: self.inner.get_banner(banner_id),
            self.policy.banner_ttl,
        )

    async def click_stats(self, banner_id: int) -> ClickStats | None:
        async def load() -> ClickStats | None:
            stats = await self.inner.click_stats(banner_id)
            if stats is not None:
                # Read together with the stats: the next reads need no query of their own.
                self.impressions_view.seed(banner_id, stats.impressions)
            return stats

        stats = await self._cached(
            cache_keys.click_stats_key(banner_id), load, self.policy.click_stats_ttl
        )
        return None if stats is None else await self._with_recent_impressions(stats)

    async def _with_recent_impressions(self, stats: ClickStats) -> ClickStats:
        try:
            latest = await self.impressions_view.get(stats.banner_id)
        except UnavailableError:
            # Database down: the cached stats are still served, impressions as they were.
            return stats
        # Impressions only grow: the larger of the two readings is the newer one.
        if latest is None or latest <= stats.impressions:
            return stats
        return with_impressions(stats, latest)

    async def banner_with_stats(self, banner_id: int) -> BannerWithStats | None:
        async def compose() -> BannerWithStats | None:
            # Built from the two cached parts, so a miss here usually costs no query.
            banner = await self.get_banner(banner_id)
            if banner is None:
                return None
            stats = await self.click_stats(banner_id)
            return None if stats is None else BannerWithStats(banner=banner, stats=stats)

        found = await self._cached(
            cache_keys.banner_stats_key(banner_id), compose, self.policy.banner_stats_ttl
        )
        if found is None:
            return None
        stats = await self._with_recent_impressions(found.stats)
        return found if stats is found.stats else BannerWithStats(banner=found.banner, stats=stats)

    async def top_banners(self, limit: int, count: CountKind = "total") -> TopBanners:
        return await self._cached(
            cache_keys.top_banners_key(limit, count),
            lambda: self.inner.top_banners(limit, count),
            self.policy.top_banners_ttl,
        )

    async def breakdown(
        self,
        banner_id: int | None,
        by: Dimension,
        start: datetime,
        end: datetime,
        count: BreakdownCount = "total",
        limit: int = 10,
    ) -> Breakdown | None:
        # The rollup is per day: whole-day bounds give the same answer and a shared key.
        first, stop = floor_to(start, DAY), ceil_to(end, DAY)
        return await self._cached(
            cache_keys.breakdown_key(banner_id, by, count, limit, first, stop),
            lambda: self.inner.breakdown(banner_id, by, first, stop, count, limit),
            self.policy.breakdown_ttl,
        )

    async def list_banners(self, offset: int, limit: int) -> BannerPage:
        return await self.inner.list_banners(offset, limit)

    async def click_series(
        self,
        banner_id: int,
        start: datetime,
        end: datetime,
        interval: Interval,
        count: CountKind = "total",
    ) -> Series | None:
        return await self.inner.click_series(banner_id, start, end, interval, count)

    async def impressions(self, banner_ids: Sequence[int]) -> dict[int, int]:
        return await self.inner.impressions(banner_ids)

    async def range_totals(
        self, banner_id: int | None, start: datetime, end: datetime
    ) -> RangeTotals | None:
        return await self.inner.range_totals(banner_id, start, end)

    async def traffic_series(
        self, banner_id: int | None, start: datetime, end: datetime, interval: Interval
    ) -> TrafficSeries | None:
        return await self.inner.traffic_series(banner_id, start, end, interval)

    async def top_banners_in_range(
        self, start: datetime, end: datetime, limit: int, count: CountKind = "total"
    ) -> TopBanners:
        return await self.inner.top_banners_in_range(start, end, limit, count)

    async def conversion_totals(
        self, banner_id: int | None, placement_id: int | None, start: datetime, end: datetime
    ) -> ConversionTotals | None:
        return await self.inner.conversion_totals(banner_id, placement_id, start, end)

    # writes --------------------------------------------------------------------------

    async def invalidate(self, keys: Iterable[str] = (), prefixes: Iterable[str] = ()) -> int:
        """Drop keys and prefixes here and on every other instance (``caching/invalidation.py``)."""
        return await self._invalidation(keys, prefixes)

    # cache administration (the CacheAdmin protocol) -----------------------------------

    def stats(self) -> CacheStats:
        return self.cache.stats()

    async def clear(self) -> int:
        self.impressions_view.clear()
        return await self.invalidate(prefixes=("",))

    async def invalidate_namespace(self, namespace: str) -> int:
        if namespace not in cache_keys.NAMESPACES:
            raise InvalidInputError(
                f"unknown cache namespace {namespace!r}; one of: {', '.join(cache_keys.NAMESPACES)}"
            )
        return await self.invalidate(prefixes=(cache_keys.prefix(namespace),))

    async def invalidate_banner(self, banner_id: int) -> int:
        # A banner may sit in any placement: every placement's candidates go too.
        return await self.invalidate(
            cache_keys.banner_keys(banner_id),
            (TOP_BANNERS_PREFIX, PLACEMENT_PREFIX, *cache_keys.breakdown_prefixes([banner_id])),
        )

    async def warm(
        self, top_limits: Sequence[int] = (5, 10, 20, 50, 100), concurrency: int = 16
    ) -> int:
        """Load active banners, their stats and the common top lists (``caching/warming.py``)."""
        return await warm_cache(self, top_limits, concurrency)

    async def create_banner(self, data: BannerCreate) -> Banner:
        banner = await self.inner.create_banner(data)
        # A "no such banner" for this id may be cached, and top lists may now include it.
        await self.invalidate(
            cache_keys.banner_keys(banner.id),
            (TOP_BANNERS_PREFIX, cache_keys.breakdown_prefix(banner.id)),
        )
        return banner

    async def update_banner(self, banner_id: int, data: BannerUpdate) -> Banner | None:
        try:
            return await self.inner.update_banner(banner_id, data)
        finally:
            await self.invalidate(
                cache_keys.updated_keys(banner_id), (TOP_BANNERS_PREFIX, PLACEMENT_PREFIX)
            )

    async def delete_banner(self, banner_id: int) -> bool:
        try:
            return await self.inner.delete_banner(banner_id)
        finally:
            self.impressions_view.forget(banner_id)
            await self.invalidate_banner(banner_id)

    async def record_impressions(self, counts: Sequence[ImpressionCount]) -> None:
        # No invalidation: impressions reach ClickStats through the ImpressionView.
        await self.inner.record_impressions(counts)

    async def record_conversion(self, data: ConversionIn, window: timedelta) -> Recorded:
        """Invalidated like a click on the conversion's banner: its stats and breakdowns
        (top lists count clicks only). A repeated report counted nothing and drops
        nothing; a write that failed half-way (its commit's outcome unknown, and with it
        the banner) drops every figure a conversion can change."""
        try:
            recorded = await self.inner.record_conversion(data, window)
        except (NotFoundError, OutsideWindowError):
            raise  # refused before anything was written
        except Exception:
            await self.invalidate(prefixes=_CONVERTED_PREFIXES)
            raise
        if recorded.created:
            banner_id = recorded.conversion.banner_id
            await self.invalidate(
                cache_keys.clicked_keys(banner_id), cache_keys.breakdown_prefixes([banner_id])
            )
        return recorded

    async def record_clicks(self, clicks: Sequence[ClickIn]) -> list[RecordedClick | None]:
        # One invalidation per batch, after its commit, before any click is acknowledged.
        # It never raises: the ingest writer retries a failed batch in halves, which is
        # only safe while every error of this call means "nothing was stored".
        ids = sorted({c.banner_id for c in clicks})
        keys = [k for b in ids for k in cache_keys.clicked_keys(b)]
        prefixes = (TOP_BANNERS_PREFIX, *cache_keys.breakdown_prefixes(ids))
        notify = None
        if keys and self._carrier is not None and self._notifying is not None:
            notify = self._carrier.carry(keys, prefixes)
        try:
            if notify is None or self._notifying is None:
                return await self.inner.record_clicks(clicks)
            # The other instances hear of the batch with its commit (NOTIFY is
            # transactional), without a round trip of its own: only here is left to drop.
            recorded = await self._notifying.record_clicks_notifying(clicks, notify)
            if self._carrier is not None:
                self._carrier.carried()
            return recorded
        finally:
            if keys:
                try:
                    if notify is not None:
                        self._invalidation.here(keys, prefixes)
                    else:
                        await self.invalidate(keys, prefixes)
                except Exception:
                    log.exception("invalidating after a click batch failed")

    async def replay_clicks(
        self, groups: Sequence[tuple[str, Sequence[ClickIn]]], in_doubt: bool
    ) -> list[bool]:
        """Spooled batches (``ReplayTarget``), with the invalidation of ``record_clicks``."""
        if not isinstance(self.inner, ReplayTarget):
            raise TypeError("the wrapped repository cannot replay spooled batches")
        ids = sorted({c.banner_id for _, clicks in groups for c in clicks})
        try:
            return await self.inner.replay_clicks(groups, in_doubt)
        finally:
            try:
                await self.invalidate(
                    [k for b in ids for k in cache_keys.clicked_keys(b)],
                    (TOP_BANNERS_PREFIX, *cache_keys.breakdown_prefixes(ids)),
                )
            except Exception:
                log.exception("invalidating after a replayed batch failed")

    async def replay_impressions(self, key: str, counts: Sequence[ImpressionCount]) -> bool:
        if not isinstance(self.inner, ReplayTarget):
            raise TypeError("the wrapped repository cannot replay spooled batches")
        return await self.inner.replay_impressions(key, counts)

    # plumbing ------------------------------------------------------------------------

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
