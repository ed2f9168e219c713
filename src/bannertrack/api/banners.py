"""/api/v1/banners: banner CRUD, click recording, statistics, series and CSV export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, TypeVar

import msgspec
from litestar import Controller, Request, delete, get, post, put
from litestar.datastructures import State
from litestar.params import JSONBody, QueryParameter
from litestar.response import Stream

from bannertrack.api.auth import admin_guard, ingest_guard
from bannertrack.api.clicks import ClickReport, click_from_report, count_flags
from bannertrack.api.params import BannerId, ctx_of
from bannertrack.db.stats_queries import MAX_SERIES_POINTS, series_points
from bannertrack.errors import InvalidInputError, NotFoundError
from bannertrack.export import csv_chunks
from bannertrack.links import to_uri
from bannertrack.models import (
    Banner,
    BannerCreate,
    BannerPage,
    BannerUpdate,
    BannerWithStats,
    ClickStats,
    CountKind,
    Interval,
    RecordedClick,
    Series,
    TopBanners,
)
from bannertrack.timeutil import as_utc, utcnow

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_Data = TypeVar("_Data", BannerCreate, BannerUpdate)
CountParam = Annotated[
    CountKind,
    QueryParameter(description="total: every recorded click; valid: neither bot nor repeat"),
]


def _as_uris(data: _Data) -> _Data:
    """The banner's URLs as they are stored: checked, and converted to URIs (links.py)."""
    changes = {
        field: to_uri(value, field)
        for field in ("image_url", "target_url")
        if isinstance(value := getattr(data, field), str)
    }
    return msgspec.structs.replace(data, **changes)


def _missing(banner_id: int) -> NotFoundError:
    return NotFoundError(f"banner {banner_id} not found")


class BannerController(Controller):
    path = "/api/v1/banners"
    tags = ["banners"]

    @post("/", guards=[admin_guard], status_code=201)
    async def create_banner(self, state: State, data: JSONBody[BannerCreate]) -> Banner:
        return await ctx_of(state).repository.create_banner(_as_uris(data))

    @get("/")
    async def list_banners(
        self,
        state: State,
        offset: Annotated[int, QueryParameter(ge=0, le=2**62)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> BannerPage:
        return await ctx_of(state).repository.list_banners(offset, limit)

    @get("/top")
    async def top_banners(
        self,
        state: State,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
        count: CountParam = "total",
    ) -> TopBanners:
        return await ctx_of(state).repository.top_banners(limit, count)

    @get("/{banner_id:int}")
    async def get_banner(self, state: State, banner_id: BannerId) -> Banner:
        banner = await ctx_of(state).repository.get_banner(banner_id)
        if banner is None:
            raise _missing(banner_id)
        return banner

    @put("/{banner_id:int}", guards=[admin_guard])
    async def update_banner(
        self, state: State, banner_id: BannerId, data: JSONBody[BannerUpdate]
    ) -> Banner:
        banner = await ctx_of(state).repository.update_banner(banner_id, _as_uris(data))
        if banner is None:
            raise _missing(banner_id)
        return banner

    @delete("/{banner_id:int}", guards=[admin_guard], status_code=204)
    async def delete_banner(self, state: State, banner_id: BannerId) -> None:
        if not await ctx_of(state).repository.delete_banner(banner_id):
            raise _missing(banner_id)

    @post("/{banner_id:int}/clicks", guards=[ingest_guard], status_code=201)
    async def record_click(
        self,
        state: State,
        request: Request[None, None, State],
        banner_id: BannerId,
        data: JSONBody[ClickReport | None] = None,
    ) -> RecordedClick:
        """A click reported by a server holding the ingest (or admin) token."""
        ctx = ctx_of(state)
        click = await click_from_report(ctx, request, banner_id, data or ClickReport())
        recorded = await ctx.ingest.record(click)
        if recorded is None:
            raise _missing(banner_id)
        count_flags(ctx, recorded)
        return recorded

    @get("/{banner_id:int}/stats")
    async def click_stats(self, state: State, banner_id: BannerId) -> ClickStats:
        stats = await ctx_of(state).repository.click_stats(banner_id)
        if stats is None:
            raise _missing(banner_id)
        return stats

    @get("/{banner_id:int}/with-stats")
    async def banner_with_stats(self, state: State, banner_id: BannerId) -> BannerWithStats:
        found = await ctx_of(state).repository.banner_with_stats(banner_id)
        if found is None:
            raise _missing(banner_id)
        return found

    @get("/{banner_id:int}/clicks")
    async def click_series(
        self,
        state: State,
        banner_id: BannerId,
        start: Annotated[datetime, QueryParameter(name="from")],
        end: Annotated[datetime, QueryParameter(name="to")],
        interval: Annotated[Interval, QueryParameter()] = "hour",
        count: CountParam = "total",
    ) -> Series:
        start, end = as_utc(start), as_utc(end)
        if start > end:
            raise InvalidInputError("'from' must not be after 'to'")
        if series_points(start, end, interval) > MAX_SERIES_POINTS:
            raise InvalidInputError(
                f"range too long for interval {interval!r}: at most {MAX_SERIES_POINTS} points"
            )
        series = await ctx_of(state).repository.click_series(banner_id, start, end, interval, count)
        if series is None:
            raise _missing(banner_id)
        return series

    @get("/{banner_id:int}/clicks.csv", guards=[admin_guard], media_type="text/csv")
    async def export_clicks(
        self,
        state: State,
        banner_id: BannerId,
        start: Annotated[datetime | None, QueryParameter(name="from")] = None,
        end: Annotated[datetime | None, QueryParameter(name="to")] = None,
    ) -> Stream:
        """Raw clicks with ``from <= occurred_at < to`` as CSV (default: all until now).

        Streamed in constant memory. ``X-Clicks-Estimate`` is an upper bound of the rows
        (from the per-minute rollup), for a progress bar.
        """
        database = ctx_of(state).database
        start = _EPOCH if start is None else as_utc(start)
        end = utcnow() if end is None else as_utc(end)
        if start > end:
            raise InvalidInputError("'from' must not be after 'to'")
        if await database.get_banner(banner_id) is None:
            raise _missing(banner_id)
        estimate = await database.clicks_in_range(banner_id, start, end)
        return Stream(
            csv_chunks(database, banner_id, start, end),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="banner-{banner_id}-clicks.csv"',
                "Cache-Control": "no-store",
                "X-Clicks-Estimate": str(estimate),
            },
        )
