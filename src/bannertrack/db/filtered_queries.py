"""Range figures filtered by click facts, counted exactly from the raw ``clicks`` rows.

The rollups cannot answer "clicks from DE via the newsletter": they count each dimension
on its own. So a filter on a click fact (country, utm_*, referrer host, device, browser,
OS) reads the raw clicks of ``[start, end)``, which retention keeps for
``retention_days``; the caller says whether the range reaches further back. The service
answers these from its in-memory copy of the clicks (``click_copy``) when that covers the
range; this SQL path reads a range through ``ix_clicks_occurred`` or in table order (the
fact indexes of migration 0010 cost every click more than this fallback gains: 0013).

Impressions carry no click facts, so a filtered range states none (``None``) unless it
filters by a banner alone, which ``SqlExplorer`` answers from the rollups instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import BigInteger, Integer, and_, cast, func, not_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from bannertrack.db.breakdown_queries import day_bounds
from bannertrack.db.sql import ranked_banners
from bannertrack.db.tables import clicks
from bannertrack.models import (
    NONE_VALUE,
    Breakdown,
    BreakdownItem,
    ClickFilter,
    CountKind,
    Dimension,
    Interval,
    RangeTotals,
    TopBanners,
    TrafficPoint,
    TrafficSeries,
)
from bannertrack.timeutil import INTERVAL_SECONDS, floor_to, from_epoch

# The column of ``clicks`` behind each dimension.
COLUMN: dict[Dimension, str] = {
    "referrer": "referrer_host",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "country": "country",
    "device": "device",
    "browser": "browser",
    "os": "os",
    "placement": "placement_id",  # by=placement groups by it; values are its id as text
}


def valid_only() -> ColumnElement[bool]:
    return and_(not_(clicks.c.bot), not_(clicks.c.repeat))


class Unindexed(ColumnElement[Any]):
    """``+column`` on SQLite: the same value, but a term so written uses no index.

    How a caller that knows better than SQLite's planner (which keeps no histograms)
    makes it read the table in order rather than a large share of it through an index.
    """

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = column.type


@compiles(Unindexed, "sqlite")
def _unindexed(element: Unindexed, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(element.column, **kw))


@compiles(Unindexed)
def _as_is(element: Unindexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


def conditions(
    f: ClickFilter, start: datetime, end: datetime, *, indexed: bool = True
) -> list[ColumnElement[bool]]:
    """The clicks of ``f`` in ``[start, end)``; ``indexed=False``: read without an index."""

    def col(name: str) -> Any:
        return clicks.c[name] if indexed else Unindexed(clicks.c[name])

    occurred = col("occurred_at")
    where: list[ColumnElement[bool]] = [occurred >= start, occurred < end]
    if f.banner_id is not None:
        where.append(col("banner_id") == f.banner_id)
    for by, value in f.values:
        column = col(COLUMN[by])
        where.append(column.is_(None) if value == NONE_VALUE else column == value)
    return where


def whole_days(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The UTC midnights around ``[start, end)``: what a breakdown counts, like the rollups."""
    first, stop = day_bounds(start, end)
    return datetime.combine(first, time(), tzinfo=UTC), datetime.combine(stop, time(), tzinfo=UTC)


def bucket_of(dialect: str, col: Any, width: int) -> ColumnElement[Any]:
    # floor, not a cast: a cast to an integer rounds 59.9 s up into the next bucket.
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", col) / width), BigInteger)
    return cast(func.strftime("%s", col), Integer) // width


async def totals(
    conn: AsyncConnection, f: ClickFilter, start: datetime, end: datetime
) -> RangeTotals:
    c = clicks.c
    row = (
        await conn.execute(
            select(
                func.count(),
                func.count().filter(valid_only()),
                func.count().filter(c.bot),
                func.count().filter(c.repeat),
            ).where(*conditions(f, start, end))
        )
    ).one()
    total, valid, bot, repeat = (int(v or 0) for v in row)
    return totals_of(f, start, end, (total, valid, bot, repeat))


def totals_of(
    f: ClickFilter, start: datetime, end: datetime, counts: tuple[int, int, int, int]
) -> RangeTotals:
    """The range's (all, valid, bot, repeat) clicks; impressions unknown under facts."""
    total, valid, bot, repeat = counts
    return RangeTotals(
        banner_id=f.banner_id,
        from_=start,
        to=end,
        total_clicks=total,
        valid_clicks=valid,
        bot_clicks=bot,
        repeat_clicks=repeat,
        impressions=None,
        ctr=None,
        conversions=None,
        conversion_rate=None,
        revenue=None,
    )


async def traffic(
    conn: AsyncConnection,
    dialect: str,
    f: ClickFilter,
    start: datetime,
    end: datetime,
    interval: Interval,
) -> TrafficSeries:
    """The buckets of ``range_queries.traffic_series`` (the same arithmetic), from raw clicks."""
    width = INTERVAL_SECONDS[interval]
    c = clicks.c
    bucket = bucket_of(dialect, c.occurred_at, width)
    rows = await conn.execute(
        select(
            bucket,
            func.count().filter(valid_only()),
            func.count().filter(c.bot),
            func.count().filter(c.repeat),
        )
        .where(*conditions(f, start, end))
        .group_by(bucket)
    )
    counts = {int(b) * width: (int(v), int(bt), int(r)) for b, v, bt, r in rows}
    return series_of(f, start, end, interval, counts)


def series_of(
    f: ClickFilter,
    start: datetime,
    end: datetime,
    interval: Interval,
    counts: dict[int, tuple[int, int, int]],
) -> TrafficSeries:
    """Every bucket of ``[start, end)``, from (valid, bot, repeat) by bucket start (epoch s)."""
    width = INTERVAL_SECONDS[interval]
    first = floor_to(start, width)
    last = max(first, floor_to(end - timedelta(microseconds=1), width))
    points = []
    for s in range(int(first.timestamp()), int(last.timestamp()) + 1, width):
        valid, bot, repeat = counts.get(s, (0, 0, 0))
        points.append(
            TrafficPoint(
                ts=from_epoch(s),
                valid_clicks=valid,
                bot_clicks=bot,
                repeat_clicks=repeat,
                impressions=None,
            )
        )
    return TrafficSeries(
        banner_id=f.banner_id, from_=start, to=end, interval=interval, points=tuple(points)
    )


async def top_banners(
    conn: AsyncConnection,
    f: ClickFilter,
    start: datetime,
    end: datetime,
    limit: int,
    count: CountKind,
) -> TopBanners:
    c = clicks.c
    counted = (func.count().filter(valid_only()) if count == "valid" else func.count()).label("n")
    per_banner = (
        select(c.banner_id, counted)
        .where(*conditions(f, start, end))
        .group_by(c.banner_id)
        .subquery()
    )
    return await ranked_banners(conn, per_banner, limit)


async def breakdown(
    conn: AsyncConnection,
    f: ClickFilter,
    by: Dimension,
    start: datetime,
    end: datetime,
    count: CountKind,
    limit: int,
) -> Breakdown:
    """Like the rollup's breakdown: whole UTC days, top ``limit`` by clicks, ties by value."""
    lo, hi = whole_days(start, end)
    c = clicks.c
    column = c[COLUMN[by]]
    counted = func.count().filter(valid_only()) if count == "valid" else func.count()
    rows = await conn.execute(
        select(column, counted).where(*conditions(f, lo, hi)).group_by(column)
    )
    found = {NONE_VALUE if v is None else str(v): int(n) for v, n in rows}
    return breakdown_of(f, by, lo, hi, found, limit)


def breakdown_of(
    f: ClickFilter, by: Dimension, lo: datetime, hi: datetime, counted: dict[str, int], limit: int
) -> Breakdown:
    """The top ``limit`` values by clicks (ties by value) and the rest as ``other``."""
    found = sorted(((v, n) for v, n in counted.items() if n), key=lambda r: (-r[1], r[0]))
    items = tuple(BreakdownItem(value=v, clicks=n) for v, n in found[:limit])
    return Breakdown(
        banner_id=f.banner_id,
        by=by,
        from_=lo,
        to=hi,
        items=items,
        other=sum(n for _, n in found[limit:]),
    )
