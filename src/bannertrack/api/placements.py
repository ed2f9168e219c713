"""/api/v1/placements (CRUD, weighted banners, statistics) and the serve ``GET /p/{id}``.

HTTP only: the choice, the caps and the signatures are ``bannertrack.placements``'; this
module parses, calls and renders. The serve's HTML is a self-contained document for an
``<iframe>``: the image in a link to the signed click URL (``target="_top"``), no script
and nothing external but the image (its Content-Security-Policy says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Annotated, NamedTuple

import msgspec
from litestar import Controller, MediaType, Request, Response, delete, get, post, put, route
from litestar.datastructures import ResponseHeader, State
from litestar.params import JSONBody, QueryParameter
from litestar.types import Scope

from bannertrack.api.auth import admin_guard
from bannertrack.api.body import iso_times, strict_body
from bannertrack.api.openapi import ADMIN, errors
from bannertrack.api.ranges import checked_range
from bannertrack.api.tracking import visit_of
from bannertrack.bootstrap.public_url import PublicUrls
from bannertrack.bootstrap.web import MAX_OFFSET, Injected, PlacementId
from bannertrack.errors import NotFoundError
from bannertrack.models import (
    Placement,
    PlacementBanners,
    PlacementBannersIn,
    PlacementCreate,
    PlacementPage,
    PlacementStats,
    PlacementUpdate,
    ServedBanner,
    ServeFormat,
)
from bannertrack.placements.serve import Served, Server
from bannertrack.repository import PlacementStore

_CSP = "default-src 'none'; img-src http: https: data:; style-src 'unsafe-inline'"
_SERVE_HEADERS = {"Cache-Control": "no-store"}
_CORS = {"Access-Control-Allow-Origin": "*", "Vary": "Origin"}


def _missing(placement_id: int) -> NotFoundError:
    return NotFoundError(f"placement {placement_id} not found")


class PlacementController(Controller):
    path = "/api/v1/placements"
    tags = ["placements"]

    @post(
        "/",
        guards=[admin_guard],
        status_code=201,
        security=ADMIN,
        responses=errors(400, 401, 403, 413, 503),
    )
    async def create_placement(
        self,
        placements: Injected[PlacementStore],
        request: Request[None, None, State],
        data: JSONBody[PlacementCreate],
    ) -> Placement:
        return await placements.create_placement(await strict_body(request, PlacementCreate))

    @get("/", responses=errors(400, 503))
    async def list_placements(
        self,
        placements: Injected[PlacementStore],
        offset: Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    ) -> PlacementPage:
        return await placements.list_placements(offset, limit)

    @get("/{placement_id:int}", responses=errors(400, 404, 503))
    async def get_placement(
        self, placements: Injected[PlacementStore], placement_id: PlacementId
    ) -> Placement:
        found = await placements.get_placement(placement_id)
        if found is None:
            raise _missing(placement_id)
        return found

    @put(
        "/{placement_id:int}",
        guards=[admin_guard],
        security=ADMIN,
        responses=errors(400, 401, 403, 404, 413, 503),
    )
    async def update_placement(
        self,
        placements: Injected[PlacementStore],
        request: Request[None, None, State],
        placement_id: PlacementId,
        data: JSONBody[PlacementUpdate],
    ) -> Placement:
        data = await strict_body(request, PlacementUpdate)
        found = await placements.update_placement(placement_id, data)
        if found is None:
            raise _missing(placement_id)
        return found

    @delete(
        "/{placement_id:int}",
        guards=[admin_guard],
        status_code=204,
        security=ADMIN,
        responses=errors(400, 401, 403, 404, 503),
    )
    async def delete_placement(
        self, placements: Injected[PlacementStore], placement_id: PlacementId
    ) -> None:
        if not await placements.delete_placement(placement_id):
            raise _missing(placement_id)

    @get("/{placement_id:int}/banners", responses=errors(400, 404, 503))
    async def placement_banners(
        self, placements: Injected[PlacementStore], placement_id: PlacementId
    ) -> PlacementBanners:
        found = await placements.placement_banners(placement_id)
        if found is None:
            raise _missing(placement_id)
        return found

    @put(
        "/{placement_id:int}/banners",
        guards=[admin_guard],
        security=ADMIN,
        responses=errors(400, 401, 403, 404, 413, 503),
    )
    async def set_placement_banners(
        self,
        placements: Injected[PlacementStore],
        request: Request[None, None, State],
        placement_id: PlacementId,
        data: JSONBody[PlacementBannersIn],
    ) -> PlacementBanners:
        """Replace the placement's banners (weights 1-1000; each banner once; every id
        must name a banner)."""
        data = await strict_body(request, PlacementBannersIn)
        found = await placements.set_placement_banners(placement_id, data.banners)
        if found is None:
            raise _missing(placement_id)
        return found

    @get("/{placement_id:int}/stats", guards=[iso_times], responses=errors(400, 404, 503))
    async def placement_stats(
        self,
        placements: Injected[PlacementStore],
        placement_id: PlacementId,
        start: Annotated[datetime, QueryParameter(name="from", description="Start, UTC")],
        end: Annotated[datetime, QueryParameter(name="to", description="End (exclusive), UTC")],
    ) -> PlacementStats:
        """Impressions and clicks the placement brought within ``[from, to)`` (whole
        minutes, as range totals), per banner; exact, from its rollup."""
        start, end = checked_range(start, end)
        found = await placements.placement_stats(placement_id, start, end)
        if found is None:
            raise _missing(placement_id)
        return found


def render_html(served: Served, click_url: str) -> str:
    banner = served.banner
    size = "".join(
        f' {name}="{value}"'
        for name, value in (("width", served.width), ("height", served.height))
        if value is not None
    )
    name = escape(banner.name)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{name}</title>"
        "<style>html,body{margin:0;padding:0;overflow:hidden}img{display:block;border:0}</style>"
        f'</head><body><a href="{escape(click_url)}" target="_top" rel="noopener">'
        f'<img src="{escape(banner.image_url)}" alt="{name}"{size}></a></body></html>'
    )


_CACHE_CONTROL = ResponseHeader(
    name="Cache-Control", description="no-store: every view is a serve.", documentation_only=True
)


@route(
    "/p/{placement_id:int}",
    http_method=["GET", "HEAD"],
    tags=["tracking"],
    media_type=MediaType.HTML,
    response_description="The chosen banner: an iframe-ready HTML document (format=html) or "
    'JSON {"banner_id", "image_url", "click_url", "width", "height"} with CORS '
    "(format=json); 204 when no banner is eligible. One impression is counted on GET.",
    response_headers=[_CACHE_CONTROL],
    responses=errors(400, 404, 503),
)
async def serve_placement(
    serving: Injected[Serving],
    request: Request[None, None, State],
    placement_id: PlacementId,
    format: Annotated[ServeFormat, QueryParameter(description="html (default) or json")] = "html",
) -> Response[bytes]:
    answer = await serving.answer(request.scope, placement_id, format == "json")
    return Response(
        answer.body, status_code=answer.status, headers=answer.headers, media_type=answer.media
    )


@dataclass(frozen=True, slots=True)
class Serving:
    """The serve as HTTP sees it, for the Litestar route and ``ServeFastPath``: the
    request's facts in, the answer out; the click URL made absolute here."""

    server: Server
    public_urls: PublicUrls

    async def answer(self, scope: Scope, placement_id: int, as_json: bool) -> Answer:
        served = await self.server.serve(placement_id, visit_of(scope))
        if served is None:
            return serve_answer(None, "", as_json)
        return serve_answer(served, self.public_urls.url(scope, served.click_path), as_json)


class Answer(NamedTuple):
    status: int
    media: str
    headers: dict[str, str]
    body: bytes


def serve_answer(served: Served | None, click_url: str, as_json: bool) -> Answer:
    """Status, headers and body of a serve."""
    extra = _CORS if as_json else {}
    if served is None:
        return Answer(204, MediaType.TEXT, {**_SERVE_HEADERS, **extra}, b"")
    if as_json:
        body = msgspec.json.encode(
            ServedBanner(
                banner_id=served.banner.id,
                image_url=served.banner.image_url,
                click_url=click_url,
                width=served.width,
                height=served.height,
            )
        )
        return Answer(200, MediaType.JSON, {**_SERVE_HEADERS, **extra}, body)
    headers = {**_SERVE_HEADERS, "Content-Security-Policy": _CSP}
    return Answer(200, MediaType.HTML, headers, render_html(served, click_url).encode())
