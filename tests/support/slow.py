"""A Repository wrapper that answers reads late on purpose.

No real database can be told "return this result 3 ms after you read it", yet that is
the race the consistency promise is about: a load reads the old state, a write commits
and invalidates, then the load finishes. This wrapper makes that happen often; the
database underneath is real.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import datetime

from bannertrack.models import (
    Banner,
    BannerCreate,
    BannerPage,
    BannerUpdate,
    BannerWithStats,
    Breakdown,
    ClickIn,
    ClickStats,
    CountKind,
    Dimension,
    ImpressionCount,
    Interval,
    RecordedClick,
    Series,
    TopBanners,
)
from bannertrack.repository import Repository


class SlowReads:
    def __init__(self, inner: Repository, max_delay: float = 0.004, seed: int = 0) -> None:
        self.inner = inner
        self.max_delay = max_delay
        self._rng = random.Random(seed)

    async def _late(self) -> None:
        await asyncio.sleep(self._rng.random() * self.max_delay)

    async def get_banner(self, banner_id: int) -> Banner | None:
        result = await self.inner.get_banner(banner_id)
        await self._late()
        return result

    async def click_stats(self, banner_id: int) -> ClickStats | None:
        result = await self.inner.click_stats(banner_id)
        await self._late()
        return result

    async def banner_with_stats(self, banner_id: int) -> BannerWithStats | None:
        result = await self.inner.banner_with_stats(banner_id)
        await self._late()
        return result

    async def impressions(self, banner_ids: Sequence[int]) -> dict[int, int]:
        result = await self.inner.impressions(banner_ids)
        await self._late()
        return result

    async def top_banners(self, limit: int, count: CountKind = "total") -> TopBanners:
        result = await self.inner.top_banners(limit, count)
        await self._late()
        return result

    async def breakdown(
        self,
        banner_id: int | None,
        by: Dimension,
        start: datetime,
        end: datetime,
        count: CountKind = "total",
        limit: int = 10,
    ) -> Breakdown | None:
        result = await self.inner.breakdown(banner_id, by, start, end, count, limit)
        await self._late()
        return result

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

    async def create_banner(self, data: BannerCreate) -> Banner:
        return await self.inner.create_banner(data)

    async def update_banner(self, banner_id: int, data: BannerUpdate) -> Banner | None:
        return await self.inner.update_banner(banner_id, data)

    async def delete_banner(self, banner_id: int) -> bool:
        return await self.inner.delete_banner(banner_id)

    async def record_clicks(self, clicks: Sequence[ClickIn]) -> list[RecordedClick | None]:
        return await self.inner.record_clicks(clicks)

    async def record_impressions(self, counts: Sequence[ImpressionCount]) -> None:
        await self.inner.record_impressions(counts)

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.inner.close()
