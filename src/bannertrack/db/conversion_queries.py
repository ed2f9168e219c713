"""Conversion figures read from their rollups: a banner's totals, a range, a breakdown.

Every figure is exact: the rollups are written in the conversion's own transaction
(``conversion_writes``). Revenue is summed as integers of millionths and turned into
decimal strings per currency at the end (``conversions.values.revenue_text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, Subquery, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bannertrack.conversions.values import (
    ConversionTotals,
    ExportedConversion,
    GoalTotals,
    amount_text,
    revenue_text,
)
from bannertrack.db.breakdown_queries import day_bounds, midnight
from bannertrack.db.conversion_writes import NO_PLACEMENT
from bannertrack.db.tables import conversion_breakdowns, conversion_minutes, conversion_totals
from bannertrack.db.tables import conversions as conversions_table
from bannertrack.models import NONE_VALUE, Breakdown, BreakdownItem, Dimension
from bannertrack.timeutil import floor_to

Figures = tuple[int, dict[str, str]]  # conversions, revenue per currency


def per_currency(banner_id: int) -> Subquery:
    """A banner's conversions and revenue per currency (``currency``, ``n``, ``micros``),
    from ``conversion_totals`` (a few rows a banner), to join into the stats query."""
    t = conversion_totals.c
    return (
        select(
            t.currency,
            func.sum(t.conversions).label("n"),
            func.sum(t.revenue_micros).label("micros"),
        )
        .where(t.banner_id == banner_id)
        .group_by(t.currency)
        .subquery()
    )


def currency_figures(rows: Sequence[Row[Any]], first: int) -> Figures:
    """Conversions and revenue from rows holding ``per_currency``'s columns at ``first``."""
    found = [(r[first], int(r[first + 1]), int(r[first + 2])) for r in rows if r[first + 1]]
    return sum(n for _, n, _ in found), revenue_text((c, m) for c, _, m in found)


def _in_range(
    query: Select[Any], banner_id: int | None, placement_id: int | None, lo: datetime, hi: datetime
) -> Select[Any]:
    m = conversion_minutes.c
    query = query.where(m.minute >= lo, m.minute < hi)
    if banner_id is not None:
        query = query.where(m.banner_id == banner_id)
    if placement_id is not None:
        query = query.where(m.placement_id == placement_id)
    return query


async def range_conversions(
    conn: AsyncConnection,
    banner_id: int | None,
    placement_id: int | None,
    start: datetime,
    end: datetime,
) -> ConversionTotals:
    """Conversions whose minute overlaps ``[start, end)``, as range totals count clicks."""
    m = conversion_minutes.c
    rows = (
        await conn.execute(
            _in_range(
                select(m.goal, m.currency, func.sum(m.conversions), func.sum(m.revenue_micros)),
                banner_id,
                placement_id,
                floor_to(start, 60),
                end,
            ).group_by(m.goal, m.currency)
        )
    ).all()
    per_goal: dict[str, list[tuple[str, int, int]]] = {}
    for goal, currency, n, micros in rows:
        per_goal.setdefault(goal, []).append((currency, int(n), int(micros)))
    goals = tuple(
        GoalTotals(
            goal=goal,
            conversions=sum(n for _, n, _ in parts),
            revenue=revenue_text((c, r) for c, _, r in parts),
        )
        for goal, parts in sorted(per_goal.items())
    )
    return ConversionTotals(
        banner_id=banner_id,
        placement_id=placement_id,
        from_=start,
        to=end,
        conversions=sum(g.conversions for g in goals),
        revenue=revenue_text((c, int(r)) for _, c, _, r in rows),
        goals=goals,
    )


async def placement_conversions(
    conn: AsyncConnection, placement_id: int, start: datetime, end: datetime
) -> dict[int, tuple[int, list[tuple[str, int]]]]:
    """Per banner, the conversions credited to ``placement_id`` whose minute overlaps
    ``[start, end)`` and their revenue as (currency, millionths) pairs."""
    m = conversion_minutes.c
    rows = await conn.execute(
        _in_range(
            select(m.banner_id, m.currency, func.sum(m.conversions), func.sum(m.revenue_micros)),
            None,
            placement_id,
            floor_to(start, 60),
            end,
        ).group_by(m.banner_id, m.currency)
    )
    counts: dict[int, int] = {}
    revenue: dict[int, list[tuple[str, int]]] = {}
    for banner_id, currency, n, micros in rows:
        counts[banner_id] = counts.get(banner_id, 0) + int(n)
        revenue.setdefault(banner_id, []).append((currency, int(micros)))
    return {int(b): (n, revenue[b]) for b, n in counts.items()}


async def conversion_breakdown(
    conn: AsyncConnection,
    banner_id: int | None,
    by: Dimension,
    start: datetime,
    end: datetime,
    limit: int,
) -> Breakdown:
    """Conversions by the converting click's ``by``, per whole UTC day, top ``limit``
    (``placement``: the click's placement, its id as the value, "(none)" for a plain
    link)."""
    first, stop = day_bounds(start, end)
    if by == "placement":  # the click's placement, kept in conversion_minutes
        m = conversion_minutes.c
        query = (
            select(m.placement_id, func.sum(m.conversions))
            .where(m.minute >= midnight(first), m.minute < midnight(stop))
            .group_by(m.placement_id)
        )
        if banner_id is not None:
            query = query.where(m.banner_id == banner_id)
        found = [
            (NONE_VALUE if p == NO_PLACEMENT else str(p), n) for p, n in await conn.execute(query)
        ]
    else:
        b = conversion_breakdowns.c
        query = (
            select(b.value, func.sum(b.conversions))
            .where(b.dimension == by, b.day >= first, b.day < stop)
            .group_by(b.value)
        )
        if banner_id is not None:
            query = query.where(b.banner_id == banner_id)
        found = list(await conn.execute(query))
    rows = [(str(v), int(n)) for v, n in found if n]
    rows.sort(key=lambda r: (-r[1], r[0]))
    items = tuple(BreakdownItem(value=v, clicks=n) for v, n in rows[:limit])
    return Breakdown(
        banner_id=banner_id,
        by=by,
        from_=midnight(first),
        to=midnight(stop),
        items=items,
        other=sum(n for _, n in rows[limit:]),
    )


async def export_page(
    conn: AsyncConnection,
    banner_id: int,
    start: datetime,
    end: datetime,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[ExportedConversion]:
    """Conversions in ``[start, end)`` by (occurred_at, id), after the key ``after``."""
    v = conversions_table.c
    query = select(
        v.id, v.occurred_at, v.goal, v.value_micros, v.currency, v.click_id, v.placement_id
    ).where(v.banner_id == banner_id, v.occurred_at >= start, v.occurred_at < end)
    if after is not None:
        at, last_id = after
        query = query.where((v.occurred_at > at) | ((v.occurred_at == at) & (v.id > last_id)))
    rows = await conn.execute(query.order_by(v.occurred_at, v.id).limit(limit))
    return [
        ExportedConversion(
            id=int(r.id),
            occurred_at=r.occurred_at,
            goal=r.goal,
            value=None if r.value_micros is None else amount_text(r.value_micros, r.currency),
            currency=r.currency,
            click_id=r.click_id,
            placement_id=None if r.placement_id is None else int(r.placement_id),
        )
        for r in rows
    ]
