"""``SqlReads``: the statistics half of the adapter, every figure read from the rollups.

Click stats, top lists, series, breakdowns and the dashboard's ranges, each on one short
read; the SQL lives in ``stats_queries``, ``breakdown_queries`` and ``range_queries``.
``SqlRepository`` derives from it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.conversions.values import ConversionTotals
from bannertrack.db import breakdown_queries, conversion_queries, range_queries, stats_queries
from bannertrack.db.maintenance import SqlMaintenance
from bannertrack.db.sql import banner_from_row
from bannertrack.db.tables import banners
from bannertrack.models import (
    Banner,
    BannerWithStats,
    Breakdown,
    BreakdownCount,
    ClickStats,
    CountKind,
    Dimension,
    Interval,
    RangeTotals,
    Series,
    TopBanners,
    TrafficSeries,
)


class SqlReads(SqlMaintenance):
    _clock: Callable[[], datetime]  # set by SqlRepository: "now" of the time windows

    async def _get_banner(self, conn: AsyncConnection, banner_id: int) -> Banner | None:
        row = (await conn.execute(banners.select().where(banners.c.id == banner_id))).first()
        return None if row is None else banner_from_row(row)

    # statistics ----------------------------------------------------------------------

    async def click_stats(self, banner_id: int) -> ClickStats | None:
        async with self._read() as conn:
            return await stats_queries.click_stats(conn, banner_id, self._clock())

    async def banner_with_stats(self, banner_id: int) -> BannerWithStats | None:
        async with self._read() as conn:
            banner = await self._get_banner(conn, banner_id)
            if banner is None:
                return None
            stats = await stats_queries.click_stats(conn, banner_id, self._clock())
        if stats is None:  # deleted between the two reads
            return None
        return BannerWithStats(banner=banner, stats=stats)

    async def top_banners(self, limit: int, count: CountKind = "total") -> TopBanners:
        async with self._read() as conn:
            return await stats_queries.top_banners(conn, limit, count)

    async def click_series(
        self,
        banner_id: int,
        start: datetime,
        end: datetime,
        interval: Interval,
        count: CountKind = "total",
    ) -> Series | None:
        async with self._read() as conn:
            if await self._get_banner(conn, banner_id) is None:
                return None
            return await stats_queries.click_series(
                conn, self._dialect, banner_id, start, end, interval, count
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
        async with self._read() as conn:
            if banner_id is not None and await self._get_banner(conn, banner_id) is None:
                return None
            if count == "conversions":
                return await conversion_queries.conversion_breakdown(
                    conn, banner_id, by, start, end, limit
                )
            return await breakdown_queries.breakdown(conn, banner_id, by, start, end, count, limit)

    # conversions ---------------------------------------------------------------------

    async def conversion_totals(
        self, banner_id: int | None, placement_id: int | None, start: datetime, end: datetime
    ) -> ConversionTotals | None:
        async with self._read() as conn:
            if banner_id is not None and await self._get_banner(conn, banner_id) is None:
                return None
            return await conversion_queries.range_conversions(
                conn, banner_id, placement_id, start, end
            )

    # ranges (the dashboard) -----------------------------------------------------------

    async def range_totals(
        self, banner_id: int | None, start: datetime, end: datetime
    ) -> RangeTotals | None:
        async with self._read() as conn:
            if banner_id is not None and await self._get_banner(conn, banner_id) is None:
                return None
            return await range_queries.range_totals(conn, banner_id, start, end)

    async def traffic_series(
        self, banner_id: int | None, start: datetime, end: datetime, interval: Interval
    ) -> TrafficSeries | None:
        async with self._read() as conn:
            if banner_id is not None and await self._get_banner(conn, banner_id) is None:
                return None
            return await range_queries.traffic_series(
                conn, self._dialect, banner_id, start, end, interval
            )

    async def top_banners_in_range(
        self, start: datetime, end: datetime, limit: int, count: CountKind = "total"
    ) -> TopBanners:
        async with self._read() as conn:
            return await range_queries.top_banners_in_range(conn, start, end, limit, count)
