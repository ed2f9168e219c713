"""Impression totals for the stats this instance serves, at most one refresh old.

Impressions arrive with every page view. Invalidating cached stats for each of them, or
even for each flush, would keep emptying the stats cache on every instance (and over
the bus, for every instance's flushes). Instead, the click parts of ClickStats keep
docs/caching.md's invalidation and the impression count is laid over them at read time from
this view:

- a banner's total is fetched once, the first time its stats are read here (or seeded
  from the stats just loaded, which carry it);
- from then on, one query every ``refresh`` seconds reads the totals of every banner
  whose stats were read in the last ``forget_after`` seconds, in pages of
  ``page_size`` ids;
- a read is a dict lookup: no query, no await on the hot path.

So an impression shows in ClickStats at most flush interval + ``refresh`` after its
pixel was answered, at the cost of one query per refresh per instance whatever the
traffic. If a refresh fails (database down), the last totals are served; they are
impression counts, not clicks, and only grow.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from bannertrack.tasks import BackgroundTask, Lifecycle, Sleep, every

log = logging.getLogger("bannertrack.clicks.impressions")

LoadMany = Callable[[Sequence[int]], Awaitable[dict[int, int]]]


class ImpressionView(Lifecycle):
    def __init__(
        self,
        load_many: LoadMany,
        *,
        refresh: float = 0.5,
        forget_after: float = 600.0,
        page_size: int = 1000,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._load_many = load_many
        self._refresh = refresh
        self._forget_after = forget_after
        self._page_size = page_size
        self._clock = clock
        self._totals: dict[int, int] = {}
        self._last_read: dict[int, float] = {}
        self._fetching: dict[int, asyncio.Future[int]] = {}
        body = every(refresh, self.refresh_once, on_error=_refresh_failed, sleep=sleep)
        self._task = BackgroundTask(body, name="bannertrack-impression-view")

    def __len__(self) -> int:
        return len(self._totals)

    def seed(self, banner_id: int, impressions: int) -> None:
        """A total read together with fresh stats: the next read needs no query."""
        if impressions >= self._totals.get(banner_id, -1):
            self._totals[banner_id] = impressions
        self._last_read[banner_id] = self._clock()

    async def get(self, banner_id: int) -> int | None:
        """The banner's impression total, or ``None`` if the database has no row for it."""
        self._last_read[banner_id] = self._clock()
        known = self._totals.get(banner_id)
        if known is not None:
            return known
        pending = self._fetching.get(banner_id)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch_one(banner_id))
            self._fetching[banner_id] = pending
            pending.add_done_callback(lambda _: self._fetching.pop(banner_id, None))
        n = await asyncio.shield(pending)
        return None if n < 0 else n

    async def _fetch_one(self, banner_id: int) -> int:
        found = await self._load_many([banner_id])
        n = found.get(banner_id)
        if n is None:
            self._last_read.pop(banner_id, None)
            return -1
        self._merge({banner_id: n})
        return n

    def _merge(self, found: dict[int, int]) -> None:
        for banner_id, n in found.items():
            # Totals only grow; a slower, older reading must not move one back.
            if n > self._totals.get(banner_id, -1):
                self._totals[banner_id] = n

    def forget(self, banner_id: int) -> None:
        """The banner is gone (deleted): drop what is known of it."""
        self._totals.pop(banner_id, None)
        self._last_read.pop(banner_id, None)

    def clear(self) -> None:
        self._totals.clear()
        self._last_read.clear()

    async def refresh_once(self) -> None:
        horizon = self._clock() - self._forget_after
        for banner_id in [b for b, t in self._last_read.items() if t < horizon]:
            self.forget(banner_id)
        ids = sorted(self._last_read)
        for start in range(0, len(ids), self._page_size):
            page = ids[start : start + self._page_size]
            found = await self._load_many(page)
            self._merge(found)
            for banner_id in page:
                if banner_id not in found:  # deleted meanwhile
                    self.forget(banner_id)

    async def start(self) -> None:
        await self._task.start()

    async def stop(self) -> None:
        await self._task.stop()


def _refresh_failed(exc: Exception) -> None:
    # Database down: keep serving the last totals; the next refresh tries again.
    log.warning("impression refresh failed: %s", exc)
