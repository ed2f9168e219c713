"""/api/v1/conversions: report a conversion (server to server), read conversion totals,
and export a banner's conversions as CSV.

Translation only: the body is decoded strictly (``value`` exactly, never through a
binary float), ``conversions.recording`` checks and stores it, and the answer's status
says whether this report counted (201) or found the first of its (click id, goal) (200).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import ValidationException
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, QueryParameter
from litestar.response import Stream

from bannertrack.api.auth import admin_guard, ingest_guard
from bannertrack.api.body import iso_times
from bannertrack.api.openapi import ADMIN, INGEST, errors
from bannertrack.api.ranges import checked_range
from bannertrack.bootstrap.web import MAX_ID, BannerId, Injected
from bannertrack.conversions.export import conversion_csv_chunks
from bannertrack.conversions.recording import ConversionRecorder
from bannertrack.conversions.values import Conversion, ConversionReport, ConversionTotals
from bannertrack.errors import InvalidInputError, NotFoundError
from bannertrack.repository import ClickArchive, Repository
from bannertrack.timeutil import as_utc, utcnow

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_decoder = msgspec.json.Decoder(ConversionReport, strict=True)


@post(
    "/api/v1/conversions",
    guards=[ingest_guard],
    status_code=201,
    security=INGEST,
    tags=["conversions"],
    responses={
        200: ResponseSpec(
            data_container=Conversion,
            description="This (click_id, goal) was reported before: the first conversion, "
            "nothing counted again (safe to retry).",
            generate_examples=False,
        ),
        **errors(400, 401, 403, 404, 413, 422, 503),
    },
)
async def report_conversion(
    conversions: Injected[ConversionRecorder],
    request: Request[None, None, State],
    data: JSONBody[ConversionReport],
) -> Response[Conversion]:
    """A conversion of the click whose id the link added (the banner's click_id_param).

    201: counted. 200: the same (click_id, goal) again, answered with the first.
    404: no click has this id. 422 ``outside_window``: the click is older than
    BANNERTRACK_CONVERSION_WINDOW_DAYS before the conversion (or after it).
    """
    try:
        report = _decoder.decode(await request.body())
    except msgspec.ValidationError as exc:  # names the field and the rule, not the value
        raise ValidationException(f"request body: {exc}") from None
    except msgspec.DecodeError:
        raise ValidationException("request body: not valid JSON") from None
    recorded = await conversions.report(report)
    return Response(recorded.conversion, status_code=201 if recorded.created else 200)


PlacementParam = Annotated[
    int | None, QueryParameter(ge=1, le=MAX_ID, description="Only this placement's clicks")
]
BannerParam = Annotated[
    int | None, QueryParameter(ge=1, le=MAX_ID, description="Only this banner's clicks")
]


@get(
    "/api/v1/conversions/totals",
    guards=[iso_times],
    tags=["conversions"],
    responses=errors(400, 404, 503),
)
async def conversion_totals(
    repository: Injected[Repository],
    start: Annotated[datetime, QueryParameter(name="from", description="Start (inclusive)")],
    end: Annotated[datetime, QueryParameter(name="to", description="End (exclusive)")],
    banner_id: BannerParam = None,
    placement_id: PlacementParam = None,
) -> ConversionTotals:
    """Conversions in a range, of every banner or one, of one placement or all, in all
    and per goal; revenue as decimal strings per currency. Minutes count whole, as in
    ``/api/v1/totals``."""
    start, end = checked_range(start, end)
    totals = await repository.conversion_totals(banner_id, placement_id, start, end)
    if totals is None:
        raise NotFoundError(f"banner {banner_id} not found")
    return totals


@get(
    "/api/v1/banners/{banner_id:int}/conversions.csv",
    guards=[admin_guard, iso_times],
    media_type="text/csv",
    security=ADMIN,
    tags=["conversions"],
    responses=errors(400, 401, 403, 404, 503),
)
async def export_conversions(
    archive: Injected[ClickArchive],
    banner_id: BannerId,
    start: Annotated[datetime | None, QueryParameter(name="from")] = None,
    end: Annotated[datetime | None, QueryParameter(name="to")] = None,
) -> Stream:
    """A banner's conversions with ``from <= occurred_at < to`` as CSV (default: all until
    now), streamed in constant memory like the clicks' export."""
    start = _EPOCH if start is None else as_utc(start)
    end = utcnow() if end is None else as_utc(end)
    if start > end:
        raise InvalidInputError("'from' must not be after 'to'")
    if await archive.get_banner(banner_id) is None:
        raise NotFoundError(f"banner {banner_id} not found")
    return Stream(
        conversion_csv_chunks(archive, banner_id, start, end),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="banner-{banner_id}-conversions.csv"',
            "Cache-Control": "no-store",
        },
    )
