"""Tracking endpoints: the link ``GET /c/{id}`` and the impression pixel ``GET /i/{id}``.

The Location is always the stored ``target_url`` (never a URL from the request, so the
link is no open redirect), optionally followed by the request's own query string
(utm_* and friends) when the banner forwards it. HEAD requests and browser prefetches
are answered the same way but not counted: no person clicked (or saw).

The pixel is answered at once; its impression is summed in memory and written with the
others of its interval (``bannertrack.impressions``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from litestar import MediaType, Request, Response, route
from litestar.datastructures import State

from bannertrack.api.clicks import click_from_request, count_flags
from bannertrack.api.params import BannerId, ctx_of
from bannertrack.errors import NotFoundError
from bannertrack.models import Banner

_NO_STORE = {"Cache-Control": "private, no-store"}
# The smallest transparent 1x1 GIF (GIF89a, one-colour palette, transparent index 0).
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
_PREFETCH_HEADERS = (("sec-purpose", "prefetch"), ("purpose", "prefetch"), ("x-moz", "prefetch"))


def redirect_location(banner: Banner, query_string: str) -> str:
    target = banner.target_url
    if not banner.forward_query or not query_string:
        return target
    parts = urlsplit(target)
    if parts.fragment:
        # Appending after a fragment would break the target; keep it as stored.
        return target
    have = {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    extra = [(k, v) for k, v in parse_qsl(query_string, keep_blank_values=True) if k not in have]
    if not extra:
        return target
    sep = "&" if parts.query else ("" if target.endswith("?") else "?")
    return f"{target}{sep}{urlencode(extra)}"


def is_prefetch(request: Request[Any, Any, Any]) -> bool:
    headers = request.headers
    return any(want in headers.get(name, "").lower() for name, want in _PREFETCH_HEADERS)


@route("/c/{banner_id:int}", http_method=["GET", "HEAD"], tags=["tracking"])
async def track_click(request: Request[None, None, State], banner_id: BannerId) -> Response[bytes]:
    # The context comes from ``request.app.state``: a ``state: State`` parameter makes
    # Litestar build a State copy (with its RLock) for every click, ~5% of the link's CPU.
    ctx = ctx_of(request.app.state)
    banner = await ctx.repository.get_banner(banner_id)
    if banner is None:
        ctx.metrics.unknown_banner.labels("click").inc()
        raise NotFoundError(f"banner {banner_id} not found")
    if request.method == "GET" and not is_prefetch(request):
        recorded = await ctx.ingest.record(await click_from_request(ctx, request, banner_id))
        if recorded is None:  # deleted between the lookup and the write
            raise NotFoundError(f"banner {banner_id} not found")
        count_flags(ctx, recorded)
    location = redirect_location(banner, request.scope.get("query_string", b"").decode("latin-1"))
    return Response(
        b"", status_code=302, headers={"Location": location, **_NO_STORE}, media_type=MediaType.TEXT
    )


@route("/i/{banner_id:int}", http_method=["GET", "HEAD"], tags=["tracking"])
async def impression_pixel(
    request: Request[None, None, State], banner_id: BannerId
) -> Response[bytes]:
    ctx = ctx_of(request.app.state)
    if await ctx.repository.get_banner(banner_id) is None:
        ctx.metrics.unknown_banner.labels("impression").inc()
        raise NotFoundError(f"banner {banner_id} not found")
    if request.method == "GET" and not is_prefetch(request):
        ctx.impressions.add(banner_id)
    return Response(
        PIXEL, status_code=200, headers={"Cache-Control": "no-store"}, media_type="image/gif"
    )
