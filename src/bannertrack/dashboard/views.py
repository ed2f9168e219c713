"""``GET /`` and ``GET /banners/{id}``: the figures, rendered on the server and filtered
by the URL (``filters``); and the app-level parts (templates, the cache-history lifespan).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Litestar, Request, get
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template import TemplateConfig

from bannertrack.bootstrap.public_url import PublicUrls
from bannertrack.bootstrap.web import BannerId, Injected
from bannertrack.dashboard.cache_history import CacheHistory
from bannertrack.dashboard.filters import LABELS, page_filter
from bannertrack.dashboard.pages import filtered_page_data, page_data
from bannertrack.dashboard.periods import resolve_period
from bannertrack.dashboard.web import (
    HEADERS,
    HERE,
    FromDay,
    RangeParam,
    ToDay,
    page_context,
    read_guard,
)
from bannertrack.errors import NotFoundError
from bannertrack.models import Banner
from bannertrack.repository import CacheAdmin, Explorer, Repository
from bannertrack.timeutil import utcnow


async def _page(
    request: Request[Any, Any, Any],
    repository: Repository,
    explorer: Explorer,
    banner: Banner | None,
    range_: str | None,
    from_: str | None,
    to: str | None,
) -> dict[str, Any] | None:
    """The context of the overview (``banner`` None) or of a banner's page, filtered by
    the URL; ``None`` when the banner went missing meanwhile."""
    period = resolve_period(range_, from_, to, utcnow())
    query = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    filters = page_filter(query, None if banner is None else banner.id)
    f = filters.click_filter
    if (banner is None and f.empty) or (banner is not None and not f.on_facts):
        data = await page_data(repository, banner, period)
    else:
        data = await filtered_page_data(explorer, banner, period, f)
    if data is None:
        return None
    path = "/" if banner is None else f"/banners/{banner.id}"
    names = {t.banner.id: t.banner.name for t in data.top.items} if data.top else {}
    if f.banner_id is not None and f.banner_id not in names and banner is None:
        named = await repository.get_banner(f.banner_id)
        if named is not None:
            names[named.id] = named.name
    return {
        **data.context(),
        **page_context(request),
        "filters": filters,
        "path": path,
        "chips": filters.chips(path, names),
        "labels": LABELS,
    }


@get("/", guards=[read_guard], include_in_schema=False)
async def overview(
    request: Request[Any, Any, Any],
    repository: Injected[Repository],
    explorer: Injected[Explorer],
    range_: RangeParam = None,
    from_: FromDay = None,
    to: ToDay = None,
) -> Template:
    context = await _page(request, repository, explorer, None, range_, from_, to)
    if context is None:  # the filter's banner does not exist
        raise NotFoundError("no such banner to filter by")
    return Template("overview.html.j2", context=context, headers=HEADERS)


@get("/banners/{banner_id:int}", guards=[read_guard], include_in_schema=False)
async def banner_page(
    repository: Injected[Repository],
    explorer: Injected[Explorer],
    public_urls: Injected[PublicUrls],
    request: Request[Any, Any, Any],
    banner_id: BannerId,
    range_: RangeParam = None,
    from_: FromDay = None,
    to: ToDay = None,
) -> Template:
    banner = await repository.get_banner(banner_id)
    context = None
    if banner is not None:
        context = await _page(request, repository, explorer, banner, range_, from_, to)
    if banner is None or context is None:
        raise NotFoundError(f"banner {banner_id} not found")
    base = public_urls.base(request.scope)
    return Template(
        "banner.html.j2",
        context={
            **context,
            "banner": banner,
            "tracking_link": f"{base}/c/{banner.id}",
            "pixel_url": f"{base}/i/{banner.id}",
        },
        headers=HEADERS,
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
