"""Tracking endpoints: the link ``GET /c/{id}`` and the impression pixel ``GET /i/{id}``.

The Location is always the stored ``target_url`` (never a URL from the request, so the
link is no open redirect), optionally followed by the request's own query string
(utm_* and friends) when the banner forwards it; ``bannertrack.clicks.follow`` builds it,
before the click is recorded, so a click whose redirect cannot be sent is never counted.
HEAD requests and browser prefetches are answered the same way but not counted: no
person clicked (or saw).

This module only translates HTTP: ``visit_of`` reads the few facts a click needs off the
ASGI scope in one pass (a ``clicks.recording.Visit``), and the domain does the rest.

The pixel is answered at once; its impression is summed in memory and written with the
others of its interval (``bannertrack.clicks.impressions``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import MediaType, Request, Response, route
from litestar.datastructures import ResponseHeader, State
from litestar.handlers import HTTPRouteHandler
from litestar.types import Scope

from bannertrack.api.errors import visitor_exception_handlers
from bannertrack.api.openapi import errors
from bannertrack.bootstrap.web import BannerId
from bannertrack.clicks.follow import follow
from bannertrack.clicks.impressions import ImpressionBatcher
from bannertrack.clicks.recording import ClickRecorder, Visit
from bannertrack.clicks.signing import ClickSigner
from bannertrack.errors import NotFoundError
from bannertrack.metrics import Metrics
from bannertrack.repository import Repository

# The link's Cache-Control, sent by the route and by ``LinkFastPath`` alike.
LINK_CACHE_CONTROL = "private, no-store"
# The smallest transparent 1x1 GIF (GIF89a, one-colour palette, transparent index 0).
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_PREFETCH_HEADERS = frozenset({b"sec-purpose", b"purpose", b"x-moz"})
# The headers a tracking-link click reads, by their lower-case wire names.
_VISIT_HEADERS = frozenset({b"user-agent", b"referer", b"x-forwarded-for"})


_LOCATION = ResponseHeader(
    name="Location",
    description="The banner's stored target_url, with the link's query string appended "
    "when the banner forwards it.",
    documentation_only=True,
    required=True,
)
_CACHE_CONTROL = ResponseHeader(
    name="Cache-Control",
    description="private, no-store: a browser asks again on every click.",
    documentation_only=True,
)


@dataclass(frozen=True, slots=True)
class Tracking:
    """Everything the two tracking endpoints use, built once at start-up."""

    repository: Repository
    clicks: ClickRecorder
    impressions: ImpressionBatcher
    metrics: Metrics
    signer: ClickSigner  # judges a placement's signed click URL


def is_prefetch(scope: Any) -> bool:
    """A browser prefetch (``Sec-Purpose``/``Purpose``/``X-Moz: prefetch``): not a click."""
    for name, value in scope["headers"]:
        if name in _PREFETCH_HEADERS and b"prefetch" in value.lower():
            return True
    return False


def counts(scope: Any) -> bool:
    """Whether this request counts: a GET that is no prefetch (HEAD is answered, not counted)."""
    return scope["method"] == "GET" and not is_prefetch(scope)


def visit_of(scope: Any) -> Visit:
    """The facts of a link request, in one pass over the raw headers.

    Litestar's ``request.headers`` builds a case-insensitive multidict of every header
    first; the link reads three (the first value of each) and looks for a prefetch mark,
    on the hottest path of the service.
    """
    found: dict[bytes, str] = {}
    prefetch = False
    for name, value in scope["headers"]:
        if name in _VISIT_HEADERS:
            if name not in found:
                found[name] = value.decode("latin-1")
        elif name in _PREFETCH_HEADERS and b"prefetch" in value.lower():
            prefetch = True
    client = scope.get("client")
    return Visit(
        query_string=scope.get("query_string", b"").decode("latin-1"),
        counts=scope["method"] == "GET" and not prefetch,
        peer=client[0] if client else None,
        forwarded_for=found.get(b"x-forwarded-for"),
        user_agent=found.get(b"user-agent"),
        referrer=found.get(b"referer"),
    )


async def visit(tracking: Tracking, scope: Scope, banner_id: int) -> str:
    """Count the click (when the request counts) and return the redirect's Location
    (``clicks.follow``), for the Litestar route and for ``LinkFastPath``."""
    request = visit_of(scope)  # the HTTP ends here
    return await follow(tracking.repository, tracking.clicks, request, banner_id, tracking.signer)


def tracking_routes(tracking_of: Callable[[], Tracking]) -> list[HTTPRouteHandler]:
    """The link and the pixel, reading their ``Tracking`` through ``tracking_of``.

    These two are the hot handlers, so they do not take it as a Litestar dependency: one
    costs about 4 us per request (a cleanup group entered on an exit stack), some 15 % of
    the link's dispatch measured in-process. A typed getter closed over here costs a call.

    Long on purpose: two handlers closing over the same getter, each kept whole so the
    order of its steps (Location before the click is counted) reads top to bottom.
    """

    @route(
        "/c/{banner_id:int}",
        http_method=["GET", "HEAD"],
        tags=["tracking"],
        status_code=302,
        media_type=MediaType.TEXT,
        response_description="Found: the banner's target (the click is counted on GET).",
        response_headers=[_LOCATION, _CACHE_CONTROL],
        responses=errors(400, 404, 409, 503),
        # A browser that followed the link gets a page, an API client the JSON error.
        exception_handlers=visitor_exception_handlers,
    )
    async def track_click(
        request: Request[None, None, State], banner_id: BannerId
    ) -> Response[bytes]:
        location = await visit(tracking_of(), request.scope, banner_id)
        return Response(
            b"",
            status_code=302,
            headers={"Location": location, "Cache-Control": LINK_CACHE_CONTROL},
            media_type=MediaType.TEXT,
        )

    @route(
        "/i/{banner_id:int}",
        http_method=["GET", "HEAD"],
        tags=["tracking"],
        media_type="image/gif",
        response_description="A transparent 1x1 GIF (one impression is counted on GET).",
        response_headers=[_CACHE_CONTROL],
        responses=errors(400, 404, 503),
    )
    async def impression_pixel(
        request: Request[None, None, State], banner_id: BannerId
    ) -> Response[bytes]:
        tracking = tracking_of()
        if await tracking.repository.get_banner(banner_id) is None:
            tracking.metrics.unknown_banner.labels("impression").inc()
            raise NotFoundError(f"banner {banner_id} not found")
        if counts(request.scope):
            tracking.impressions.add(banner_id)
        return Response(
            PIXEL, status_code=200, headers={"Cache-Control": "no-store"}, media_type="image/gif"
        )

    return [track_click, impression_pixel]
