"""Breakdowns read from the ``click_breakdowns`` rollup: one grouped query over days.

The rollup is per UTC day, so a range is widened to whole days: from the midnight at or
before ``start`` to the midnight at or after ``end``; the answer states those bounds. A
breakdown over months therefore reads (days x values) rollup rows, never raw clicks.
Device, browser and OS are read from their own rows and from the ``AGENT`` rows, which
count the three together (``breakdown_writes``). "(none)" is not stored: it is the days'
clicks (the ``AGENT`` rows and the ``DAY_TOTAL`` rows, which count the clicks without an
``AGENT`` row) less the values read.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.db.tables import click_breakdowns, placement_minutes
from bannertrack.models import (
    AGENT,
    AGENT_PARTS,
    AGENT_SEPARATOR,
    DAY_TOTAL,
    NONE_VALUE,
    OTHER_VALUE,
    Breakdown,
    BreakdownItem,
    CountKind,
    Dimension,
)
from bannertrack.timeutil import ceil_to, floor_to

DAY = 86_400


def day_bounds(start: datetime, end: datetime) -> tuple[date, date]:
    """The first day in the range and the day after the last one."""
    first = floor_to(start, DAY)
    return first.date(), max(ceil_to(end, DAY), first).date()


async def _placement_clicks(
    conn: AsyncConnection, banner_id: int | None, first: date, stop: date, count: CountKind
) -> dict[str, int]:
    """Clicks per placement (its id as the value) within the days, from
    ``placement_minutes``; the rest of the days' clicks come out as "(none)"."""
    pm = placement_minutes.c
    column = pm.clicks if count == "total" else pm.valid_clicks
    query = (
        select(pm.placement_id, func.sum(column))
        .where(pm.minute >= midnight(first), pm.minute < midnight(stop))
        .group_by(pm.placement_id)
    )
    if banner_id is not None:
        query = query.where(pm.banner_id == banner_id)
    return {str(p): int(n) for p, n in await conn.execute(query) if n}


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


async def breakdown(
    conn: AsyncConnection,
    banner_id: int | None,
    by: Dimension,
    start: datetime,
    end: datetime,
    count: CountKind,
    limit: int,
) -> Breakdown:
    """Top ``limit`` values by clicks (ties by value); ``other`` is everything else."""
    first, stop = day_bounds(start, end)
    b = click_breakdowns.c
    column = b.clicks if count == "total" else b.valid_clicks
    total = func.sum(column).label("n")
    query = (
        select(b.dimension, b.value, total)
        .where(b.dimension.in_([by, AGENT, DAY_TOTAL]), b.day >= first, b.day < stop)
        .group_by(b.dimension, b.value)
    )
    if banner_id is not None:
        query = query.where(b.banner_id == banner_id)
    part = AGENT_PARTS.index(by) if by in AGENT_PARTS else None
    all_clicks = 0
    counted: dict[str, int] = {}
    for dimension, value, n in await conn.execute(query):
        n = int(n or 0)
        if dimension == DAY_TOTAL:
            all_clicks += n
        elif dimension == AGENT:
            all_clicks += n
            if part is not None:  # "(none)" parts included: they are counted clicks
                value = value.split(AGENT_SEPARATOR)[part]
                counted[value] = counted.get(value, 0) + n
        elif n and value != NONE_VALUE:  # "(none)" rows of an older writer: derived below
            counted[value] = counted.get(value, 0) + n
    if by == "placement":
        counted = await _placement_clicks(conn, banner_id, first, stop, count)
    # Clicks without a value of this dimension have no row of their own.
    unknown = all_clicks - sum(counted.values())
    if unknown > 0:
        counted[NONE_VALUE] = counted.get(NONE_VALUE, 0) + unknown
    rows = [(v, n) for v, n in counted.items() if n]
    rows.sort(key=lambda r: (-r[1], r[0]))
    ranked = [r for r in rows if r[0] != OTHER_VALUE]
    items = tuple(BreakdownItem(value=v, clicks=n) for v, n in ranked[:limit])
    other = sum(n for _, n in rows) - sum(i.clicks for i in items)
    return Breakdown(
        banner_id=banner_id,
        by=by,
        from_=midnight(first),
        to=midnight(stop),
        items=items,
        other=other,
    )
