"""Statistics read from the rollups: click stats, top banners, time-range series.

Every figure is exact. "Clicks in the last hour" sums the whole minutes inside the window
from ``click_minutes`` and counts raw clicks only for the one partial minute at its start.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, cast, func, literal, select, true
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from bannertrack.db.conversion_queries import currency_figures, per_currency
from bannertrack.db.sql import banner_from_row
from bannertrack.db.tables import banner_totals, banners, click_minutes, clicks
from bannertrack.models import (
    ClickStats,
    CountKind,
    Interval,
    Series,
    SeriesPoint,
    TopBanner,
    TopBanners,
    click_through_rate,
    conversion_rate,
)
from bannertrack.timeutil import INTERVAL_SECONDS, ceil_to, floor_to, from_epoch


async def click_stats(conn: AsyncConnection, banner_id: int, now: datetime) -> ClickStats | None:
    """Exact counts at ``now``: whole minutes from the rollup, raw clicks for the edge.

    Long on purpose: one SELECT of scalar subqueries, so every figure comes from one
    snapshot; its parts are the nested helpers.
    """
    hour_ago, day_ago = now - timedelta(hours=1), now - timedelta(days=1)
    hour_edge, day_edge = ceil_to(hour_ago, 60), ceil_to(day_ago, 60)
    m, c = click_minutes.c, clicks.c

    def whole_minutes(since: datetime) -> ColumnElement[Any]:
        return (
            select(func.coalesce(func.sum(m.clicks), 0))
            .where(m.banner_id == banner_id, m.minute >= since)
            .scalar_subquery()
        )

    def partial_minute(lo: datetime, hi: datetime) -> ColumnElement[Any]:
        if lo == hi:
            return literal(0)
        return (
            select(func.count())
            .select_from(clicks)
            .where(c.banner_id == banner_id, c.occurred_at >= lo, c.occurred_at < hi)
            .scalar_subquery()
        )

    t = banner_totals.c
    # The banner's conversions per currency, joined in: one row per currency (one row of
    # NULLs before the first conversion), so the conversions share the clicks' snapshot.
    converted_by = per_currency(banner_id)
    rows = (
        await conn.execute(
            select(
                t.total_clicks,
                t.first_click_at,
                t.last_click_at,
                whole_minutes(hour_edge) + partial_minute(hour_ago, hour_edge),
                whole_minutes(day_edge) + partial_minute(day_ago, day_edge),
                t.valid_clicks,
                t.bot_clicks,
                t.repeat_clicks,
                t.impressions,
                *converted_by.c,
            )
            .select_from(banner_totals.outerjoin(converted_by, true()))
            .where(t.banner_id == banner_id)
        )
    ).all()
    if not rows:
        return None
    row = rows[0]
    converted, revenue = currency_figures(rows, first=9)
    return ClickStats(
        banner_id=banner_id,
        total_clicks=int(row[0]),
        clicks_last_hour=int(row[3]),
        clicks_last_24h=int(row[4]),
        first_click_at=row[1],
        last_click_at=row[2],
        valid_clicks=int(row[5]),
        bot_clicks=int(row[6]),
        repeat_clicks=int(row[7]),
        impressions=int(row[8]),
        ctr=click_through_rate(int(row[5]), int(row[8])),
        conversions=converted,
        conversion_rate=conversion_rate(converted, int(row[5])),
        revenue=revenue,
    )


async def top_banners(conn: AsyncConnection, limit: int, count: CountKind) -> TopBanners:
    t = banner_totals.c
    counted = t.valid_clicks if count == "valid" else t.total_clicks
    rows = await conn.execute(
        select(banners, counted.label("counted"))
        .join(banner_totals, t.banner_id == banners.c.id)
        .order_by(counted.desc(), t.banner_id)
        .limit(limit)
    )
    items = tuple(TopBanner(banner=banner_from_row(r), clicks=int(r.counted)) for r in rows)
    return TopBanners(limit=limit, items=items)


async def click_series(
    conn: AsyncConnection,
    dialect: str,
    banner_id: int,
    start: datetime,
    end: datetime,
    interval: Interval,
    count: CountKind,
) -> Series:
    """Whole buckets from ``start`` rounded down to the one holding ``end``, zeros included."""
    width = INTERVAL_SECONDS[interval]
    first, last = floor_to(start, width), floor_to(end, width)
    m = click_minutes.c
    counted = m.valid_clicks if count == "valid" else m.clicks
    bucket = epoch_bucket(dialect, m.minute, width)
    rows = await conn.execute(
        select(bucket, func.sum(counted))
        .where(
            m.banner_id == banner_id,
            m.minute >= first,
            m.minute < last + timedelta(seconds=width),
        )
        .group_by(bucket)
    )
    counts = {int(b) * width: int(n) for b, n in rows}
    first_epoch = int(first.timestamp())
    n_points = (int(last.timestamp()) - first_epoch) // width + 1
    points = tuple(
        SeriesPoint(ts=from_epoch(s), clicks=counts.get(s, 0))
        for s in range(first_epoch, first_epoch + n_points * width, width)
    )
    return Series(banner_id=banner_id, from_=start, to=end, interval=interval, points=points)


def epoch_bucket(dialect: str, col: Any, width: int) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return cast(func.extract("epoch", col), BigInteger) // width
    # SQLite stores naive UTC text; strftime('%s') reads it as UTC seconds.
    return cast(func.strftime("%s", col), Integer) // width
