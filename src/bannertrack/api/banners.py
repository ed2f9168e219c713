"""/api/v1/banners: banner CRUD, click recording, statistics, series and CSV export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, TypeVar

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import JSONBody, QueryParameter
from litestar.response import Stream

from bannertrack.api.auth import admin_guard, ingest_guard
from bannertrack.api.body import iso_times, strict_body
from bannertrack.api.openapi import ADMIN, INGEST, errors
from bannertrack.bootstrap.web import MAX_OFFSET, BannerId, Injected
from bannertrack.clicks.export import csv_chunks
from bannertrack.clicks.links import to_uri
from bannertrack.clicks.recording import ClickRecorder, ClickReport
from bannertrack.errors import InvalidInputError, NotFoundError
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
    SpooledClick,
    TopBanners,
)
from bannertrack.placements.rules import checked
from bannertrack.repository import ClickArchive, Repository
from bannertrack.series import check_series_range
from bannertrack.timeutil import as_utc, utcnow

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_Data = TypeVar("_Data", BannerCreate, BannerUpdate)
CountParam = Annotated[
    CountKind,
    QueryParameter(description="total: every recorded click; valid: neither bot nor repeat"),
]


def _as_uris(data: _Data) -> _Data:
    """The banner as stored: URLs checked and converted to URIs (links.py), schedule and
    targeting checked (placements/rules.py)."""
    changes = {
        field: to_uri(value, field)
        for field in ("image_url", "target_url")
        if isinstance(value := getattr(data, field), str)
    }
    return msgspec.structs.replace(checked(data), **changes)


def _missing(banner_id: int) -> NotFoundError:
    return NotFoundError(f"banner {banner_id} not found")


class BannerController(Controller):
    path = "/api/v1/banners"
    tags = ["banners"]

    @post(
        "/",
        guards=[admin_guard],
        status_code=201,
        security=ADMIN,
        responses=errors(400, 401, 403, 413, 503),
    )
    async def create_banner(
        self,
        repository: Injected[Repository],
        request: Request[None, None, State],
        data: JSONBody[BannerCreate],
    ) -> Banner:
        data = await strict_body(request, BannerCreate)
        return await repository.create_banner(_as_uris(data))

    @get("/", responses=errors(400, 503))
    async def list_banners(
        self,
        repository: Injected[Repository],
        offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> BannerPage:
        return await repository.list_banners(offset, limit)

    @get("/top", responses=errors(400, 503))
    async def top_banners(
        self,
        repository: Injected[Repository],
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
        count: CountParam = "total",
    ) -> TopBanners:
        return await repository.top_banners(limit, count)

    @get("/{banner_id:int}", responses=errors(400, 404, 503))
    async def get_banner(self, repository: Injected[Repository], banner_id: BannerId) -> Banner:
        banner = await repository.get_banner(banner_id)
        if banner is None:
            raise _missing(banner_id)
        return banner

    @put(
        "/{banner_id:int}",
        guards=[admin_guard],
        security=ADMIN,
        responses=errors(400, 401, 403, 404, 413, 503),
    )
    async def update_banner(
        self,
        repository: Injected[Repository],
        request: Request[None, None, State],
        banner_id: BannerId,
        data: JSONBody[BannerUpdate],
    ) -> Banner:
        data = await strict_body(request, BannerUpdate)
        banner = await repository.update_banner(banner_id, _as_uris(data))
        if banner is None:
            raise _missing(banner_id)
        return banner

    @delete(
        "/{banner_id:int}",
        guards=[admin_guard],
        status_code=204,
        security=ADMIN,
        responses=errors(400, 401, 403, 404, 503),
    )
    async def delete_banner(self, repository: Injected[Repository], banner_id: BannerId) -> None:
        if not await repository.delete_banner(banner_id):
            raise _missing(banner_id)

    @post(
        "/{banner_id:int}/clicks",
        guards=[ingest_guard],
        status_code=201,
        security=INGEST,
        responses={
            202: ResponseSpec(
                data_container=SpooledClick,
                description="Accepted: the database is down; the click is durable on this "
                "instance's disk and is stored in the database once it answers.",
                generate_examples=False,
                examples=[
                    Example(
                        summary="Spooled",
                        value={
                            "banner_id": 7,
                            "occurred_at": "2026-12-06T12:00:00Z",
                            "spooled": True,
                        },
                    )
                ],
            ),
            **errors(400, 401, 403, 404, 413, 503),
        },
    )
    async def record_click(
        self,
        clicks: Injected[ClickRecorder],
        request: Request[None, None, State],
        banner_id: BannerId,
        data: JSONBody[ClickReport | None] = None,
    ) -> Response[RecordedClick | SpooledClick]:
        """A click reported by a server holding the ingest (or admin) token."""
        report = ClickReport() if data is None else await strict_body(request, ClickReport)
        query = request.scope.get("query_string", b"").decode("latin-1")
        recorded = await clicks.record_report(report, banner_id, query)
        if recorded is None:
            raise _missing(banner_id)
        return Response(recorded, status_code=202 if isinstance(recorded, SpooledClick) else 201)

    @get("/{banner_id:int}/stats", responses=errors(400, 404, 503))
    async def click_stats(
        self, repository: Injected[Repository], banner_id: BannerId
    ) -> ClickStats:
        stats = await repository.click_stats(banner_id)
        if stats is None:
            raise _missing(banner_id)
        return stats

    @get("/{banner_id:int}/with-stats", responses=errors(400, 404, 503))
    async def banner_with_stats(
        self, repository: Injected[Repository], banner_id: BannerId
    ) -> BannerWithStats:
        found = await repository.banner_with_stats(banner_id)
        if found is None:
            raise _missing(banner_id)
        return found

    @get("/{banner_id:int}/clicks", guards=[iso_times], responses=errors(400, 404, 503))
    async def click_series(
        self,
        repository: Injected[Repository],
        banner_id: BannerId,
        start: Annotated[datetime, QueryParameter(name="from")],
        end: Annotated[datetime, QueryParameter(name="to")],
        interval: Annotated[Interval, QueryParameter()] = "hour",
        count: CountParam = "total",
    ) -> Series:
        start, end = as_utc(start), as_utc(end)
        check_series_range(start, end, interval)
        series = await repository.click_series(banner_id, start, end, interval, count)
        if series is None:
            raise _missing(banner_id)
        return series

    @get(
        "/{banner_id:int}/clicks.csv",
        guards=[admin_guard, iso_times],
        media_type="text/csv",
        security=ADMIN,
        responses=errors(400, 401, 403, 404, 503),
    )
    async def export_clicks(
        self,
        archive: Injected[ClickArchive],
        banner_id: BannerId,
        start: Annotated[datetime | None, QueryParameter(name="from")] = None,
        end: Annotated[datetime | None, QueryParameter(name="to")] = None,
    ) -> Stream:
        """Raw clicks with ``from <= occurred_at < to`` as CSV (default: all until now).

        Streamed in constant memory. ``X-Clicks-Estimate`` is an upper bound of the rows
        (from the per-minute rollup), for a progress bar.
        """
        start = _EPOCH if start is None else as_utc(start)
        end = utcnow() if end is None else as_utc(end)
        if start > end:
            raise InvalidInputError("'from' must not be after 'to'")
        if await archive.get_banner(banner_id) is None:
            raise _missing(banner_id)
        estimate = await archive.clicks_in_range(banner_id, start, end)
        return Stream(
            csv_chunks(archive, banner_id, start, end),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="banner-{banner_id}-clicks.csv"',
                "Cache-Control": "no-store",
                "X-Clicks-Estimate": str(estimate),
            },
        )
