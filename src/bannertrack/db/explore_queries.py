"""The dashboard's other reads: the banner table and the last half hour.

The banner table joins ``banners`` with their running totals (``banner_totals``), so
sorting by clicks or CTR reads one row per banner, never a click. The status of a banner
is derived: paused when not active; with a schedule (``starts_at``/``ends_at``, when the
table has them) scheduled before its start and ended after its end; else active.

The live view reads ``click_minutes`` for clicks per minute and the newest raw clicks
(newest first, by ``ix_clicks_occurred``) for their referrers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, false, func, literal, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from bannertrack.db.sql import banner_from_row
from bannertrack.db.tables import banner_totals, banners, click_minutes, clicks
from bannertrack.models import click_through_rate
from bannertrack.models.explore import (
    BannerRow,
    BannerSort,
    BannerStatus,
    BannerTable,
    LiveClick,
    LiveMinute,
    LiveView,
)
from bannertrack.timeutil import floor_to


def _status_conditions(now: datetime) -> dict[BannerStatus, ColumnElement[bool]]:
    b = banners.c
    starts, ends = b.get("starts_at"), b.get("ends_at")
    running = b.active == true()
    not_yet = (starts > now) if starts is not None else false()
    over = (ends <= now) if ends is not None else false()
    return {
        "paused": b.active == false(),
        "scheduled": and_(running, not_yet, not_(over)),
        "ended": and_(running, over),
        "active": and_(running, not_(not_yet), not_(over)),
    }


def status_of(row: Any, now: datetime) -> BannerStatus:
    if not row.active:
        return "paused"
    ends = getattr(row, "ends_at", None)
    if ends is not None and ends <= now:
        return "ended"
    starts = getattr(row, "starts_at", None)
    if starts is not None and starts > now:
        return "scheduled"
    return "active"


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filtered(query: Select[Any], search: str, status: BannerStatus | None, now: datetime) -> Any:
    if search:
        like = banners.c.name.ilike(f"%{_escape_like(search)}%", escape="\\")
        query = query.where(
            or_(like, banners.c.id == int(search))
            if search.isdigit() and len(search) < 18
            else like
        )
    if status is not None:
        query = query.where(_status_conditions(now)[status])
    return query


async def banner_table(
    conn: AsyncConnection,
    search: str,
    status: BannerStatus | None,
    sort: BannerSort,
    offset: int,
    limit: int,
    now: datetime,
) -> BannerTable:
    t = banner_totals.c
    valid = func.coalesce(t.valid_clicks, 0)
    total_clicks = func.coalesce(t.total_clicks, 0)
    shown = func.coalesce(t.impressions, 0)
    ctr = case((shown > 0, valid * literal(1.0) / shown), else_=None)
    orders: dict[BannerSort, list[Any]] = {
        "clicks": [valid.desc(), banners.c.id],
        "ctr": [ctr.desc().nulls_last(), valid.desc(), banners.c.id],
        "name": [func.lower(banners.c.name), banners.c.id],
        "created": [banners.c.created_at.desc(), banners.c.id.desc()],
    }
    order = orders[sort]
    joined = banners.outerjoin(banner_totals, banner_totals.c.banner_id == banners.c.id)
    rows_query = _filtered(
        select(
            banners, total_clicks.label("t_total"), valid.label("t_valid"), shown.label("t_shown")
        ).select_from(joined),
        search,
        status,
        now,
    )
    count_query = _filtered(select(func.count()).select_from(banners), search, status, now)
    total = int((await conn.execute(count_query)).scalar_one())
    rows = await conn.execute(rows_query.order_by(*order).offset(offset).limit(limit))
    items = tuple(
        BannerRow(
            banner=banner_from_row(r),
            status=status_of(r, now),
            total_clicks=int(r.t_total),
            valid_clicks=int(r.t_valid),
            impressions=int(r.t_shown),
            ctr=click_through_rate(int(r.t_valid), int(r.t_shown)),
        )
        for r in rows
    )
    return BannerTable(items=items, total=total, offset=offset, limit=limit)


async def live(conn: AsyncConnection, now: datetime, minutes: int, latest: int) -> LiveView:
    since = floor_to(now, 60) - timedelta(minutes=minutes - 1)
    m = click_minutes.c
    per_minute = await conn.execute(
        select(m.minute, func.sum(m.valid_clicks), func.sum(m.clicks))
        .where(m.minute >= since)
        .group_by(m.minute)
    )
    counted = {row[0]: (int(row[1]), int(row[2])) for row in per_minute}
    points = tuple(
        LiveMinute(
            minute=at,
            valid_clicks=counted.get(at, (0, 0))[0],
            total_clicks=counted.get(at, (0, 0))[1],
        )
        for at in (since + timedelta(minutes=i) for i in range(minutes))
    )
    c = clicks.c
    newest = await conn.execute(
        select(c.id, c.banner_id, c.occurred_at, c.referrer_host, c.country, c.bot, c.repeat)
        .where(c.occurred_at >= since)
        .order_by(c.occurred_at.desc(), c.id.desc())
        .limit(latest)
    )
    recent = tuple(
        LiveClick(
            id=r.id,
            banner_id=r.banner_id,
            occurred_at=r.occurred_at,
            referrer=r.referrer_host,
            country=r.country,
            valid=not (r.bot or r.repeat),
        )
        for r in newest
    )
    return LiveView(since=since, now=now, minutes=points, latest=recent)
