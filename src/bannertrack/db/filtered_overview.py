"""A range's page under a click-fact filter in one pass over the raw clicks, not a dozen.

The dashboard's page shows a range's totals, its series, its top banners and eight
breakdown lists. Asked one by one (``filtered_queries``), each is a scan of the matching
raw clicks; here one statement reads them once and groups them every way at once:
GROUPING SETS on PostgreSQL; on SQLite, which has none, a materialized CTE (one scan of
``clicks`` into a temporary B-tree) that each grouping of a UNION ALL reads in turn.

The rows read are those of the breakdowns' whole UTC days (``day_bounds``), which hold
the range; a flag marks the ones inside ``[start, end)``, which alone count for the
totals, the series and the top banners. Conditions, bucket arithmetic, ranking and
assembly are ``filtered_queries``'s own, so each part equals its per-figure read (tests
compare the two on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, literal, null, select, tuple_, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.db.filtered_queries import (
    COLUMN,
    breakdown_of,
    bucket_of,
    conditions,
    series_of,
    totals_of,
    valid_only,
    whole_days,
)
from bannertrack.db.sql import banner_from_row
from bannertrack.db.tables import banners, clicks
from bannertrack.models import (
    NONE_VALUE,
    ClickFilter,
    CountKind,
    Dimension,
    Interval,
    TopBanner,
    TopBanners,
)
from bannertrack.models.explore import FilteredOverview
from bannertrack.timeutil import INTERVAL_SECONDS

# The groupings, by the number each result row carries: the series (with the range's
# totals), the banners, then one per breakdown dimension.
SERIES, BANNERS, FIRST_DIMENSION = 0, 1, 2


# Above this share of the rows, SQLite reads the table in order instead of through an
# index: an index entry costs a lookup in the table, about 6 rows read in order (on a
# million clicks, 3.9 s of CPU through ix_clicks_occurred against 0.6 s in order).
WHOLE_TABLE_SHARE = 1 / 8


async def _whole_table(conn: AsyncConnection, f: ClickFilter, lo: datetime, hi: datetime) -> bool:
    """SQLite: whether the range's clicks are too large a share to read through an index.

    SQLite keeps no histograms, so without help it reads a month of clicks through
    ``ix_clicks_occurred``, a lookup per row. The share is estimated from the index
    itself: rows in the range from the ids at its two ends (ids grow with time; a replayed
    click is the exception, and this only picks a plan).
    """
    c = clicks.c
    if f.banner_id is not None:
        return False  # one banner's clicks: its index is narrow enough
    # Two scalar subqueries: SQLite answers min() or max() of the key from the B-tree's
    # ends, but scans the whole table for both in one SELECT (1.2 s on a million rows).
    ends = (
        await conn.execute(
            select(
                select(func.min(c.id)).scalar_subquery(), select(func.max(c.id)).scalar_subquery()
            )
        )
    ).one()
    if ends[0] is None:
        return False
    first = await conn.scalar(
        select(c.id).where(c.occurred_at >= lo).order_by(c.occurred_at).limit(1)
    )
    last = await conn.scalar(
        select(c.id).where(c.occurred_at < hi).order_by(c.occurred_at.desc()).limit(1)
    )
    if first is None or last is None:
        return False
    in_range = max(1, int(last) - int(first) + 1)
    return in_range > WHOLE_TABLE_SHARE * (int(ends[1]) - int(ends[0]) + 1)


def _flag(condition: Any) -> Any:
    return case((condition, 1), else_=0)


def _grouped(
    dialect: str,
    f: ClickFilter,
    start: datetime,
    end: datetime,
    lo: datetime,
    hi: datetime,
    interval: Interval,
    dims: Sequence[Dimension],
    indexed: bool,
) -> Select[Any]:
    c = clicks.c
    rows = select(
        _flag((c.occurred_at >= start) & (c.occurred_at < end)).label("inside"),
        bucket_of(dialect, c.occurred_at, INTERVAL_SECONDS[interval]).label("bucket"),
        c.banner_id,
        *(c[COLUMN[by]].label(f"d{i}") for i, by in enumerate(dims)),
        _flag(valid_only()).label("valid"),
        _flag(c.bot).label("bot"),
        _flag(c.repeat).label("rep"),
    ).where(*conditions(f, lo, hi, indexed=indexed))
    if dialect == "postgresql":
        m = rows.subquery("m")
        keys = [m.c.inside, m.c.bucket, m.c.banner_id, *(m.c[f"d{i}"] for i in range(len(dims)))]
        sets = [
            tuple_(m.c.inside, m.c.bucket),
            tuple_(m.c.inside, m.c.banner_id),
            *(tuple_(k) for k in keys[3:]),
        ]
        counted = (func.count(), func.sum(m.c.valid), func.sum(m.c.bot), func.sum(m.c.rep))
        return select(func.grouping(*keys), *keys, *counted).group_by(func.grouping_sets(*sets))
    cte = rows.cte("m").prefix_with("MATERIALIZED")
    keys = [
        cte.c.inside,
        cte.c.bucket,
        cte.c.banner_id,
        *(cte.c[f"d{i}"] for i in range(len(dims))),
    ]
    counted = (func.count(), func.sum(cte.c.valid), func.sum(cte.c.bot), func.sum(cte.c.rep))
    groupings = [(0, 1), (0, 2), *((3 + i,) for i in range(len(dims)))]
    branches = [
        select(
            literal(number),
            *(k if i in grouped else null() for i, k in enumerate(keys)),
            *counted,
        ).group_by(*(keys[i] for i in grouped))
        for number, grouped in enumerate(groupings)
    ]
    return union_all(*branches)  # type: ignore[return-value]


def _set_number(dialect: str, marker: int, width: int) -> int:
    """Which grouping a row is: SQLite's literal, or decoded from PostgreSQL's GROUPING()."""
    if dialect != "postgresql":
        return marker
    grouped = {i for i in range(width) if not marker & (1 << (width - 1 - i))}
    if grouped == {0, 1}:
        return SERIES
    if grouped == {0, 2}:
        return BANNERS
    (only,) = grouped
    return FIRST_DIMENSION + only - 3


async def top_of(
    conn: AsyncConnection, per_banner: dict[int, int], limit: int
) -> tuple[TopBanner, ...]:
    """The ``limit`` banners with most clicks (ties: lower id), skipping deleted ones."""
    ranked = sorted(((n, i) for i, n in per_banner.items() if n > 0), key=lambda r: (-r[0], r[1]))
    found: list[TopBanner] = []
    at = 0
    while len(found) < limit and at < len(ranked):
        chunk = ranked[at : at + limit]
        at += limit
        rows = await conn.execute(banners.select().where(banners.c.id.in_([i for _, i in chunk])))
        by_id = {r.id: r for r in rows}
        for n, i in chunk:
            if i in by_id and len(found) < limit:
                found.append(TopBanner(banner=banner_from_row(by_id[i]), clicks=n))
    return tuple(found)


async def overview(
    conn: AsyncConnection,
    dialect: str,
    f: ClickFilter,
    start: datetime,
    end: datetime,
    interval: Interval,
    dims: Sequence[Dimension],
    top_limit: int | None,
    limit: int,
    count: CountKind,
) -> FilteredOverview:
    """Totals, series, top banners (unless ``top_limit`` is None) and breakdowns by ``dims``."""
    lo, hi = whole_days(start, end)
    width = INTERVAL_SECONDS[interval]
    series: dict[int, tuple[int, int, int]] = {}
    totals = [0, 0, 0, 0]
    per_banner: dict[int, int] = {}
    per_value: list[dict[str, int]] = [{} for _ in dims]
    key_count = 3 + len(dims)
    indexed = dialect != "sqlite" or not await _whole_table(conn, f, lo, hi)
    result = await conn.execute(_grouped(dialect, f, start, end, lo, hi, interval, dims, indexed))
    for row in result:
        number = _set_number(dialect, int(row[0]), key_count)
        inside, bucket, banner_id = row[1], row[2], row[3]
        n_all, n_valid, n_bot, n_repeat = (int(v or 0) for v in row[1 + key_count :])
        chosen = n_valid if count == "valid" else n_all
        if number == SERIES and inside:
            series[int(bucket) * width] = (n_valid, n_bot, n_repeat)
            for i, n in enumerate((n_all, n_valid, n_bot, n_repeat)):
                totals[i] += n
        elif number == BANNERS and inside:
            per_banner[int(banner_id)] = chosen
        elif number >= FIRST_DIMENSION:
            j = number - FIRST_DIMENSION
            value = row[4 + j]
            per_value[j][NONE_VALUE if value is None else str(value)] = chosen
    top = None
    if top_limit is not None:
        top = TopBanners(limit=top_limit, items=await top_of(conn, per_banner, top_limit))
    return FilteredOverview(
        totals=totals_of(f, start, end, (totals[0], totals[1], totals[2], totals[3])),
        series=series_of(f, start, end, interval, series),
        top=top,
        breakdowns=tuple(
            breakdown_of(f, by, lo, hi, found, limit)
            for by, found in zip(dims, per_value, strict=True)
        ),
    )
