"""``GET /`` and ``GET /banners/{id}``: the dashboard, rendered on the server.

Reads are open unless ``BANNERTRACK_DASHBOARD_TOKEN`` is set; then the page asks for it
with HTTP Basic authentication (any user name, the token as password), which every
browser can answer without a script, or takes it as a bearer token. Cache actions are
not done here: the page's script calls ``/api/v1/cache/*`` with the admin token the
user typed, so the dashboard never holds admin rights of its own.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Litestar, Request, Router, get
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import QueryParameter
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from bannertrack.bootstrap.web import BannerId, Injected, settings_of
from bannertrack.dashboard.cache_history import CacheHistory
from bannertrack.dashboard.cache_panel import cache_panel
from bannertrack.dashboard.pages import page_data
from bannertrack.dashboard.periods import resolve_period
from bannertrack.errors import NotFoundError
from bannertrack.public_url import PublicUrls
from bannertrack.repository import CacheAdmin, Repository
from bannertrack.timeutil import utcnow

HERE = Path(__file__).parent
# Everything the page loads comes from this service; no inline script or style.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

RangeParam = Annotated[str | None, QueryParameter(name="range", max_length=16)]
FromDay = Annotated[str | None, QueryParameter(name="from", max_length=10)]
ToDay = Annotated[str | None, QueryParameter(name="to", max_length=10)]


def _given_token(header: str) -> str:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return ""


async def read_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    expected = settings_of(connection).dashboard_token
    if not expected:
        return
    given = _given_token(connection.headers.get("authorization", ""))
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise NotAuthorizedException(
            "the dashboard needs BANNERTRACK_DASHBOARD_TOKEN (as the password)",
            headers={"WWW-Authenticate": 'Basic realm="bannertrack dashboard", charset="UTF-8"'},
        )


def _history(state: State) -> CacheHistory:
    history: CacheHistory = state.cache_history
    return history


def _cache_context(state: State, cache_admin: CacheAdmin | None) -> dict[str, Any]:
    stats = cache_admin.stats() if cache_admin is not None else None
    return {"cache": cache_panel(stats, _history(state))}


@get("/", guards=[read_guard], include_in_schema=False)
async def overview(
    state: State,
    repository: Injected[Repository],
    cache_admin: Injected[CacheAdmin | None],
    range_: RangeParam = None,
    from_: FromDay = None,
    to: ToDay = None,
) -> Template:
    period = resolve_period(range_, from_, to, utcnow())
    data = await page_data(repository, None, period)
    assert data is not None  # only a banner can go missing
    return Template(
        "overview.html.j2",
        context={**data.context(), **_cache_context(state, cache_admin)},
        headers=_HEADERS,
    )


@get("/dashboard/cache", guards=[read_guard], include_in_schema=False)
async def cache_fragment(state: State, cache_admin: Injected[CacheAdmin | None]) -> Template:
    """The cache panel alone: the page's script refreshes the panel from it (no queries)."""
    return Template(
        "_cache_panel.html.j2", context=_cache_context(state, cache_admin), headers=_HEADERS
    )


@get("/banners/{banner_id:int}", guards=[read_guard], include_in_schema=False)
async def banner_page(
    repository: Injected[Repository],
    public_urls: Injected[PublicUrls],
    request: Request[Any, Any, Any],
    banner_id: BannerId,
    range_: RangeParam = None,
    from_: FromDay = None,
    to: ToDay = None,
) -> Template:
    banner = await repository.get_banner(banner_id)
    period = resolve_period(range_, from_, to, utcnow())
    data = None if banner is None else await page_data(repository, banner, period)
    if banner is None or data is None:
        raise NotFoundError(f"banner {banner_id} not found")
    base = public_urls.base(request.scope)
    return Template(
        "banner.html.j2",
        context={
            **data.context(),
            "banner": banner,
            "tracking_link": f"{base}/c/{banner.id}",
            "pixel_url": f"{base}/i/{banner.id}",
        },
        headers=_HEADERS,
    )


def cache_history_lifespan(
    cache_admin_of: Callable[[], CacheAdmin | None],
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """Sample the cache counters while the app runs (after the service is open)."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        cache_admin = cache_admin_of()
        history = CacheHistory(cache_admin.stats if cache_admin is not None else lambda: None)
        app.state.cache_history = history
        await history.start()
        try:
            yield
        finally:
            await history.stop()

    return lifespan


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,  # a misspelt name fails the test, not the marketer
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(env))


dashboard_router = Router(
    path="/",
    route_handlers=[
        overview,
        banner_page,
        cache_fragment,
        create_static_files_router(
            path="/dashboard/static",
            directories=[HERE / "static"],
            include_in_schema=False,
            cache_control=None,
        ),
    ],
)
