"""Range statistics for the dashboard, read from the per-minute rollups only.

``click_minutes`` and ``impression_minutes`` hold one row per banner and minute, so a
range of months reads at most (banners x minutes) small rows and never a raw click;
retention can delete raw clicks without changing any figure here. A minute counts when
it overlaps ``[start, end)``: ``floor(start) <= minute < end``. ``banner_id=None`` means
every banner.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.db.conversion_queries import range_conversions
from bannertrack.db.sql import ranked_banners
from bannertrack.db.stats_queries import epoch_bucket
from bannertrack.db.tables import click_minutes, impression_minutes
from bannertrack.models import (
    CountKind,
    Interval,
    RangeTotals,
    TopBanners,
    TrafficPoint,
    TrafficSeries,
    click_through_rate,
    conversion_rate,
)
from bannertrack.timeutil import INTERVAL_SECONDS, floor_to, from_epoch


def _within(
    query: Select[Any], table: Any, banner_id: int | None, lo: datetime, hi: datetime
) -> Select[Any]:
    query = query.where(table.c.minute >= lo, table.c.minute < hi)
    return query if banner_id is None else query.where(table.c.banner_id == banner_id)


async def range_totals(
    conn: AsyncConnection, banner_id: int | None, start: datetime, end: datetime
) -> RangeTotals:
    m = click_minutes.c
    lo = floor_to(start, 60)
    clicks_row = (
        await conn.execute(
            _within(
                select(
                    func.coalesce(func.sum(m.clicks), 0),
                    func.coalesce(func.sum(m.valid_clicks), 0),
                    func.coalesce(func.sum(m.bot_clicks), 0),
                    func.coalesce(func.sum(m.repeat_clicks), 0),
                ),
                click_minutes,
                banner_id,
                lo,
                end,
            )
        )
    ).one()
    shown = (
        await conn.execute(
            _within(
                select(func.coalesce(func.sum(impression_minutes.c.impressions), 0)),
                impression_minutes,
                banner_id,
                lo,
                end,
            )
        )
    ).scalar_one()
    total, valid, bot, repeat = (int(v) for v in clicks_row)
    converted = await range_conversions(conn, banner_id, None, start, end)
    return RangeTotals(
        banner_id=banner_id,
        from_=start,
        to=end,
        total_clicks=total,
        valid_clicks=valid,
        bot_clicks=bot,
        repeat_clicks=repeat,
        impressions=int(shown),
        ctr=click_through_rate(valid, int(shown)),
        conversions=converted.conversions,
        conversion_rate=conversion_rate(converted.conversions, valid),
        revenue=converted.revenue,
    )


async def traffic_series(
    conn: AsyncConnection,
    dialect: str,
    banner_id: int | None,
    start: datetime,
    end: datetime,
    interval: Interval,
) -> TrafficSeries:
    """Whole buckets from the one holding ``start`` to the one holding the last instant
    before ``end`` (the end is exclusive, like the totals'), zeros included.

    Long on purpose: the bucket arithmetic and the query that follows it must agree, so they
    stay in one place.
    """
    width = INTERVAL_SECONDS[interval]
    first = floor_to(start, width)
    last = max(first, floor_to(end - timedelta(microseconds=1), width))
    hi = last + timedelta(seconds=width)
    m = click_minutes.c
    bucket = epoch_bucket(dialect, m.minute, width)
    click_rows = await conn.execute(
        _within(
            select(
                bucket, func.sum(m.valid_clicks), func.sum(m.bot_clicks), func.sum(m.repeat_clicks)
            ),
            click_minutes,
            banner_id,
            first,
            hi,
        ).group_by(bucket)
    )
    counts = {int(b) * width: (int(v), int(bt), int(r)) for b, v, bt, r in click_rows}
    im = impression_minutes.c
    ibucket = epoch_bucket(dialect, im.minute, width)
    shown_rows = await conn.execute(
        _within(
            select(ibucket, func.sum(im.impressions)), impression_minutes, banner_id, first, hi
        ).group_by(ibucket)
    )
    shown = {int(b) * width: int(n) for b, n in shown_rows}
    first_epoch = int(first.timestamp())
    points = []
    for s in range(first_epoch, int(last.timestamp()) + 1, width):
        valid, bot, repeat = counts.get(s, (0, 0, 0))
        points.append(
            TrafficPoint(
                ts=from_epoch(s),
                valid_clicks=valid,
                bot_clicks=bot,
                repeat_clicks=repeat,
                impressions=shown.get(s, 0),
            )
        )
    return TrafficSeries(
        banner_id=banner_id, from_=start, to=end, interval=interval, points=tuple(points)
    )


async def top_banners_in_range(
    conn: AsyncConnection, start: datetime, end: datetime, limit: int, count: CountKind
) -> TopBanners:
    """The banners with most clicks in the range (banners without any are left out)."""
    m = click_minutes.c
    counted = func.sum(m.valid_clicks if count == "valid" else m.clicks).label("n")
    per_banner = (
        _within(select(m.banner_id, counted), click_minutes, None, floor_to(start, 60), end)
        .group_by(m.banner_id)
        .subquery()
    )
    return await ranked_banners(conn, per_banner, limit)
