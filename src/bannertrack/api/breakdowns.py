"""Breakdowns: where clicks came from, per banner and across all banners.

    GET /api/v1/banners/{id}/breakdown?by=&from=&to=&count=total|valid|conversions&limit=N
    GET /api/v1/breakdown?by=...  (the same over every banner)

Read from the daily ``click_breakdowns`` rollup through the cache (namespace
``breakdown``); the range widens to whole UTC days, and the answer says which. Click
filters (``api/filters.py``) narrow it, counted from raw clicks, uncached.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from litestar import get
from litestar.params import QueryParameter

from bannertrack.api.body import iso_times
from bannertrack.api.filters import FILTER_DEPENDENCY
from bannertrack.api.openapi import errors
from bannertrack.bootstrap.web import BannerId, Injected
from bannertrack.errors import InvalidInputError, NotFoundError
from bannertrack.models import Breakdown, BreakdownCount, ClickFilter, Dimension
from bannertrack.repository import Explorer, Repository
from bannertrack.timeutil import as_utc, utcnow

DEFAULT_DAYS = 30
# Whole-day rounding must stay inside datetime's range.
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9999, 1, 1, tzinfo=UTC)

ByParam = Annotated[
    Dimension,
    QueryParameter(
        description="referrer (host), utm_source, utm_medium, utm_campaign, country "
        "(ISO 3166-1 alpha-2), device (desktop, mobile, tablet, bot, other), browser, os, "
        "placement (the id of the placement whose signed click URL brought the click)"
    ),
]
FromParam = Annotated[
    datetime | None,
    QueryParameter(name="from", description="Start (UTC; default: 30 days before 'to')"),
]
ToParam = Annotated[datetime | None, QueryParameter(name="to", description="End (default: now)")]
CountParam = Annotated[
    BreakdownCount,
    QueryParameter(
        description="total: every recorded click; valid: neither bot nor repeat; "
        "conversions: the conversions credited to clicks, by the converting click's facts"
    ),
]
LimitParam = Annotated[int, QueryParameter(ge=1, le=100, description="Values listed")]


def _range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = utcnow() if end is None else as_utc(end)
    if not _EARLIEST <= end < _LATEST:  # before the default 'from' is computed from it
        raise InvalidInputError("'from' and 'to' must lie between 1970 and 9998")
    start = end - timedelta(days=DEFAULT_DAYS) if start is None else as_utc(start)
    if start > end:
        raise InvalidInputError("'from' must not be after 'to'")
    if start < _EARLIEST:
        raise InvalidInputError("'from' and 'to' must lie between 1970 and 9998")
    return start, end


async def _filtered(
    explorer: Explorer,
    f: ClickFilter,
    by: Dimension,
    lo: datetime,
    hi: datetime,
    count: BreakdownCount,
    limit: int,
) -> Breakdown:
    if count == "conversions":
        raise InvalidInputError(
            "count=conversions cannot be combined with click filters: conversions are "
            "kept per banner, placement and day, not per combination of click facts"
        )
    found = await explorer.breakdown(f, by, lo, hi, count, limit)
    if found is None:
        raise NotFoundError(f"banner {f.banner_id} not found")
    return found


@get(
    "/api/v1/banners/{banner_id:int}/breakdown",
    tags=["breakdowns"],
    guards=[iso_times],
    responses=errors(400, 404, 503),
    dependencies=FILTER_DEPENDENCY,
)
async def banner_breakdown(
    repository: Injected[Repository],
    explorer: Injected[Explorer],
    click_filter: Injected[ClickFilter],
    banner_id: BannerId,
    by: ByParam,
    start: FromParam = None,
    end: ToParam = None,
    count: CountParam = "total",
    limit: LimitParam = 10,
) -> Breakdown:
    """Clicks of one banner by referrer, campaign, country, device, browser or OS."""
    lo, hi = _range(start, end)
    if click_filter.on_facts:
        f = msgspec.structs.replace(click_filter, banner_id=banner_id)
        return await _filtered(explorer, f, by, lo, hi, count, limit)
    found = await repository.breakdown(banner_id, by, lo, hi, count, limit)
    if found is None:
        raise NotFoundError(f"banner {banner_id} not found")
    return found


@get(
    "/api/v1/breakdown",
    tags=["breakdowns"],
    guards=[iso_times],
    responses=errors(400, 503),
    dependencies=FILTER_DEPENDENCY,
)
async def overview_breakdown(
    repository: Injected[Repository],
    explorer: Injected[Explorer],
    click_filter: Injected[ClickFilter],
    by: ByParam,
    start: FromParam = None,
    end: ToParam = None,
    count: CountParam = "total",
    limit: LimitParam = 10,
) -> Breakdown:
    """The same across all banners (``banner_id`` is null)."""
    lo, hi = _range(start, end)
    if click_filter.on_facts:
        return await _filtered(explorer, click_filter, by, lo, hi, count, limit)
    found = await repository.breakdown(None, by, lo, hi, count, limit)
    if found is None:  # the overview always exists; a None here is a repository bug
        raise NotFoundError("no breakdown")
    return found
