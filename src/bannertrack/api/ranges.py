"""Range figures behind the dashboard, as JSON: totals, traffic and top banners.

``/api/v1/totals`` and ``/api/v1/traffic`` cover every banner; the ``/banners/{id}/``
forms cover one. They read the per-minute rollups (docs/api.md says which minutes count)
and are not cached, like the click series. Click filters (``api/filters.py``) narrow
them; a filtered answer is counted from raw clicks by the ``Explorer``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Router, get
from litestar.params import QueryParameter

from bannertrack.api.body import iso_times
from bannertrack.api.filters import FILTER_DEPENDENCY
from bannertrack.api.openapi import errors
from bannertrack.bootstrap.web import BannerId, Injected
from bannertrack.errors import InvalidInputError, NotFoundError
from bannertrack.models import (
    ClickFilter,
    CountKind,
    Interval,
    RangeTotals,
    TopBanners,
    TrafficSeries,
)
from bannertrack.repository import Explorer, Repository
from bannertrack.series import MAX_SERIES_POINTS, series_points
from bannertrack.timeutil import as_utc

From = Annotated[datetime, QueryParameter(name="from", description="Start (inclusive), UTC")]
To = Annotated[datetime, QueryParameter(name="to", description="End (exclusive), UTC")]
IntervalParam = Annotated[Interval, QueryParameter(description="Bucket width")]


def checked_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = as_utc(start), as_utc(end)
    if start > end:
        raise InvalidInputError("'from' must not be after 'to'")
    return start, end


def _checked_points(start: datetime, end: datetime, interval: Interval) -> None:
    if series_points(start, end, interval) > MAX_SERIES_POINTS:
        raise InvalidInputError(
            f"range too long for interval {interval!r}: at most {MAX_SERIES_POINTS} points"
        )


async def _totals(
    repository: Repository, explorer: Explorer, f: ClickFilter, start: datetime, end: datetime
) -> RangeTotals:
    start, end = checked_range(start, end)
    if f.on_facts:
        totals = await explorer.range_totals(f, start, end)
    else:
        totals = await repository.range_totals(f.banner_id, start, end)
    if totals is None:
        raise NotFoundError(f"banner {f.banner_id} not found")
    return totals


async def _traffic(
    repository: Repository,
    explorer: Explorer,
    f: ClickFilter,
    start: datetime,
    end: datetime,
    interval: Interval,
) -> TrafficSeries:
    start, end = checked_range(start, end)
    _checked_points(start, end, interval)
    if f.on_facts:
        series = await explorer.traffic_series(f, start, end, interval)
    else:
        series = await repository.traffic_series(f.banner_id, start, end, interval)
    if series is None:
        raise NotFoundError(f"banner {f.banner_id} not found")
    return series


@get("/totals", responses=errors(400, 503))
async def all_totals(
    repository: Injected[Repository],
    explorer: Injected[Explorer],
    click_filter: Injected[ClickFilter],
    start: From,
    end: To,
) -> RangeTotals:
    return await _totals(repository, explorer, click_filter, start, end)


@get("/banners/{banner_id:int}/totals", responses=errors(400, 404, 503))
async def banner_totals(
    repository: Injected[Repository],
    explorer: Injected[Explorer],
    click_filter: Injected[ClickFilter],
    banner_id: BannerId,
    start: From,
    end: To,
) -> RangeTotals:
    f = msgspec.structs.replace(click_filter, banner_id=banner_id)
    return await _totals(repository, explorer, f, start, end)


@get("/traffic", responses=errors(400, 503))
async def all_traffic(
    repository: Injected[Repository],
    explorer: Injected[Explorer],
    click_filter: Injected[ClickFilter],
    start: From,
    end: To,
    interval: IntervalParam = "hour",
) -> TrafficSeries:
    return await _traffic(repository, explorer, click_filter, start, end, interval)


@get("/banners/{banner_id:int}/traffic", responses=errors(400, 404, 503))
async def banner_traffic(
    repository: Injected[Repository],
    explorer: Injected[Explorer],
    click_filter: Injected[ClickFilter],
    banner_id: BannerId,
    start: From,
    end: To,
    interval: IntervalParam = "hour",
) -> TrafficSeries:
    f = msgspec.structs.replace(click_filter, banner_id=banner_id)
    return await _traffic(repository, explorer, f, start, end, interval)


@get("/top", responses=errors(400, 503))
async def top_in_range(
    repository: Injected[Repository],
    explorer: Injected[Explorer],
    click_filter: Injected[ClickFilter],
    start: From,
    end: To,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
    count: Annotated[CountKind, QueryParameter()] = "total",
) -> TopBanners:
    start, end = checked_range(start, end)
    if click_filter.on_facts:
        return await explorer.top_banners(click_filter, start, end, limit, count)
    return await repository.top_banners_in_range(start, end, limit, count)


range_router = Router(
    path="/api/v1",
    guards=[iso_times],
    route_handlers=[all_totals, banner_totals, all_traffic, banner_traffic, top_in_range],
    dependencies=FILTER_DEPENDENCY,
    tags=["ranges"],
)
