"""``SqlExplorer``: the ``Explorer`` door on the database (filtered ranges, banner table, live).

A filter on click facts is counted from raw clicks: from the worker's in-memory copy of
them (``click_copy``, exact, caught up with the database before each answer) when it is
loaded and covers the range, else by SQL (``filtered_queries``, ``filtered_overview``). A
filter on a banner alone, or none, reads the rollups like the unfiltered range API.
Nothing here is cached: like the series, these reads are keyed by arbitrary ranges and
filters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bannertrack.db import (
    breakdown_queries,
    explore_queries,
    filtered_overview,
    filtered_queries,
    range_queries,
)
from bannertrack.db.click_columns import Counts, counts
from bannertrack.db.click_copy import ClickCopy
from bannertrack.db.errors import map_db_errors
from bannertrack.db.sql import banner_from_row
from bannertrack.db.tables import banners
from bannertrack.models import (
    Breakdown,
    ClickFilter,
    CountKind,
    Dimension,
    Interval,
    RangeTotals,
    TopBanner,
    TopBanners,
    TrafficSeries,
)
from bannertrack.models.explore import (
    BannerSort,
    BannerStatus,
    BannerTable,
    FilteredOverview,
    LiveView,
)
from bannertrack.timeutil import INTERVAL_SECONDS, utcnow


class SqlExplorer:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        retention_days: int,
        clock: Callable[[], datetime] = utcnow,
        copy: ClickCopy | None = None,
    ) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._keep = timedelta(days=retention_days)
        self._clock = clock
        self.copy = copy

    async def _copied(
        self, conn: AsyncConnection, since: datetime, compute: Callable[..., Counts]
    ) -> Counts | None:
        """``compute`` on the in-memory copy, or None: the caller asks SQL."""
        if self.copy is None:
            return None
        return await self.copy.read(conn, since, compute)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        with map_db_errors():
            async with self.engine.connect() as conn:
                yield conn

    async def _missing(self, conn: AsyncConnection, f: ClickFilter) -> bool:
        if f.banner_id is None:
            return False
        found = await conn.execute(banners.select().where(banners.c.id == f.banner_id))
        return found.first() is None

    def _incomplete_before(self, f: ClickFilter, start: datetime) -> datetime | None:
        """The oldest instant raw clicks are kept from, when a fact filter reaches past it."""
        cutoff = self._clock() - self._keep
        return cutoff if f.on_facts and start < cutoff else None

    async def range_totals(
        self, f: ClickFilter, start: datetime, end: datetime
    ) -> RangeTotals | None:
        async with self._read() as conn:
            if await self._missing(conn, f):
                return None
            if not f.on_facts:
                return await range_queries.range_totals(conn, f.banner_id, start, end)
            got = await self._copied(conn, start, lambda cols: counts(cols, f, (start, end)))
            if got is not None:
                found = filtered_queries.totals_of(f, start, end, got.totals)
            else:
                found = await filtered_queries.totals(conn, f, start, end)
        return msgspec.structs.replace(found, incomplete_before=self._incomplete_before(f, start))

    async def traffic_series(
        self, f: ClickFilter, start: datetime, end: datetime, interval: Interval
    ) -> TrafficSeries | None:
        async with self._read() as conn:
            if await self._missing(conn, f):
                return None
            if not f.on_facts:
                return await range_queries.traffic_series(
                    conn, self._dialect, f.banner_id, start, end, interval
                )
            width = INTERVAL_SECONDS[interval]
            got = await self._copied(
                conn, start, lambda cols: counts(cols, f, (start, end), width_s=width)
            )
            if got is not None:
                found = filtered_queries.series_of(f, start, end, interval, got.series)
            else:
                found = await filtered_queries.traffic(conn, self._dialect, f, start, end, interval)
        return msgspec.structs.replace(found, incomplete_before=self._incomplete_before(f, start))

    async def top_banners(
        self, f: ClickFilter, start: datetime, end: datetime, limit: int, count: CountKind
    ) -> TopBanners:
        async with self._read() as conn:
            if f.banner_id is None and not f.on_facts:
                return await range_queries.top_banners_in_range(conn, start, end, limit, count)
            if f.banner_id is not None and not f.on_facts:
                return await self._one_banner(conn, f.banner_id, start, end, limit, count)
            got = await self._copied(
                conn,
                start,
                lambda cols: counts(cols, f, (start, end), count=count, banners=True),
            )
            if got is not None:
                found = TopBanners(
                    limit=limit, items=await filtered_overview.top_of(conn, got.per_banner, limit)
                )
            else:
                found = await filtered_queries.top_banners(conn, f, start, end, limit, count)
        return msgspec.structs.replace(found, incomplete_before=self._incomplete_before(f, start))

    async def _one_banner(
        self,
        conn: AsyncConnection,
        banner_id: int,
        start: datetime,
        end: datetime,
        limit: int,
        count: CountKind,
    ) -> TopBanners:
        """The top list filtered by one banner: that banner, if it has clicks."""
        row = (await conn.execute(banners.select().where(banners.c.id == banner_id))).first()
        totals = await range_queries.range_totals(conn, banner_id, start, end)
        n = totals.valid_clicks if count == "valid" else totals.total_clicks
        items = () if row is None or n == 0 else (TopBanner(banner=banner_from_row(row), clicks=n),)
        return TopBanners(limit=limit, items=items)

    async def breakdown(
        self,
        f: ClickFilter,
        by: Dimension,
        start: datetime,
        end: datetime,
        count: CountKind,
        limit: int,
    ) -> Breakdown | None:
        async with self._read() as conn:
            if await self._missing(conn, f):
                return None
            if not f.on_facts:
                return await breakdown_queries.breakdown(
                    conn, f.banner_id, by, start, end, count, limit
                )
            lo, hi = filtered_queries.whole_days(start, end)
            got = await self._copied(
                conn,
                lo,
                lambda cols: counts(cols, f, (start, end), (lo, hi), dims=(by,), count=count),
            )
            if got is not None:
                found = filtered_queries.breakdown_of(f, by, lo, hi, got.per_value[0], limit)
            else:
                found = await filtered_queries.breakdown(conn, f, by, start, end, count, limit)
        return msgspec.structs.replace(
            found, incomplete_before=self._incomplete_before(f, found.from_)
        )

    async def overview(
        self,
        f: ClickFilter,
        start: datetime,
        end: datetime,
        interval: Interval,
        dims: Sequence[Dimension],
        top_limit: int | None,
        limit: int,
        count: CountKind,
    ) -> FilteredOverview | None:
        """A fact filter's totals, series, top banners and breakdowns in one pass."""
        if not f.on_facts:
            raise ValueError("overview() reads raw clicks: a fact filter only")
        async with self._read() as conn:
            if await self._missing(conn, f):
                return None
            found = await self._overview_copied(
                conn, f, start, end, interval, dims, top_limit, limit, count
            ) or await filtered_overview.overview(
                conn, self._dialect, f, start, end, interval, dims, top_limit, limit, count
            )
        cut = self._incomplete_before(f, start)
        replace = msgspec.structs.replace
        return FilteredOverview(
            totals=replace(found.totals, incomplete_before=cut),
            series=replace(found.series, incomplete_before=cut),
            top=None if found.top is None else replace(found.top, incomplete_before=cut),
            breakdowns=tuple(
                replace(b, incomplete_before=self._incomplete_before(f, b.from_))
                for b in found.breakdowns
            ),
        )

    async def _overview_copied(
        self,
        conn: AsyncConnection,
        f: ClickFilter,
        start: datetime,
        end: datetime,
        interval: Interval,
        dims: Sequence[Dimension],
        top_limit: int | None,
        limit: int,
        count: CountKind,
    ) -> FilteredOverview | None:
        lo, hi = filtered_queries.whole_days(start, end)
        width = INTERVAL_SECONDS[interval]
        got = await self._copied(
            conn,
            min(lo, start),
            lambda cols: counts(
                cols,
                f,
                (start, end),
                (lo, hi),
                width_s=width,
                dims=dims,
                count=count,
                banners=top_limit is not None,
            ),
        )
        if got is None:
            return None
        top = None
        if top_limit is not None:
            items = await filtered_overview.top_of(conn, got.per_banner, top_limit)
            top = TopBanners(limit=top_limit, items=items)
        return FilteredOverview(
            totals=filtered_queries.totals_of(f, start, end, got.totals),
            series=filtered_queries.series_of(f, start, end, interval, got.series),
            top=top,
            breakdowns=tuple(
                filtered_queries.breakdown_of(f, by, lo, hi, found, limit)
                for by, found in zip(dims, got.per_value, strict=True)
            ),
        )

    async def banner_table(
        self,
        search: str,
        status: BannerStatus | None,
        sort: BannerSort,
        offset: int,
        limit: int,
    ) -> BannerTable:
        async with self._read() as conn:
            return await explore_queries.banner_table(
                conn, search, status, sort, offset, limit, self._clock()
            )

    async def live(self, minutes: int = 30, latest: int = 12) -> LiveView:
        async with self._read() as conn:
            return await explore_queries.live(conn, self._clock(), minutes, latest)
