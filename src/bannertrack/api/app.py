"""``create_app(settings)``: the one place the HTTP application is assembled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.datastructures import State

from bannertrack import __version__
from bannertrack.api.allow import AllowHeaderFix
from bannertrack.api.banners import BannerController
from bannertrack.api.body import BannertrackRequest
from bannertrack.api.breakdowns import banner_breakdown, overview_breakdown
from bannertrack.api.cache_admin import CacheController
from bannertrack.api.conversions import conversion_totals, export_conversions, report_conversion
from bannertrack.api.deps import Running, dependencies
from bannertrack.api.errors import exception_handlers
from bannertrack.api.health import healthz, metrics
from bannertrack.api.ids import canonical_ids
from bannertrack.api.limits import BodyDeadline
from bannertrack.api.link_fast_path import LinkFastPath
from bannertrack.api.openapi import openapi_config
from bannertrack.api.openapi import static_files as openapi_static_files
from bannertrack.api.openapi_finish import finish as finish_openapi
from bannertrack.api.placements import PlacementController, serve_placement
from bannertrack.api.ranges import range_router
from bannertrack.api.serve_fast_path import ServeFastPath
from bannertrack.api.timing import TimedApp
from bannertrack.api.tracking import tracking_routes
from bannertrack.bootstrap import open_service
from bannertrack.bootstrap.heap import settle_heap
from bannertrack.bootstrap.web import SETTINGS
from bannertrack.config import Settings, load_settings
from bannertrack.dashboard import (
    SESSION_STORE,
    cache_history_lifespan,
    dashboard_router,
    session_store,
    template_config,
)
from bannertrack.logs import configure_logging


def create_app(settings: Settings, *, settle: bool = False) -> BodyDeadline:
    """The service's ASGI app: Litestar, with the tracking link's fast path, request timing,
    the OPTIONS fix and a body deadline around it.

    ``settle``: freeze the heap once started (``bannertrack.bootstrap.heap``); for a process that
    serves this one app, not for tests that build many apps in one process.
    """
    running = Running()

    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        async with open_service(settings) as service:
            running.start(service)
            if settle:
                settle_heap()
            try:
                yield
            finally:
                running.stop()

    app = Litestar(
        route_handlers=[
            BannerController,
            PlacementController,
            serve_placement,
            CacheController,
            report_conversion,
            conversion_totals,
            export_conversions,
            banner_breakdown,
            overview_breakdown,
            range_router,
            dashboard_router(),
            *tracking_routes(lambda: running.built.tracking),
            healthz,
            metrics,
            openapi_static_files(),
        ],
        lifespan=[lifespan, cache_history_lifespan(lambda: running.built.service.cache_admin)],
        template_config=template_config(),
        stores={SESSION_STORE: session_store(settings)},
        dependencies=dependencies(running),
        state=State({SETTINGS: settings}),
        exception_handlers=exception_handlers,
        openapi_config=openapi_config(__version__),
        request_max_body_size=settings.http_max_body,
        request_class=BannertrackRequest,
        before_request=canonical_ids,
        debug=False,
        logging_config=None,
    )
    finish_openapi(app.openapi_schema)
    fast = LinkFastPath(ServeFastPath(app, running.serving), running.tracking)
    timed = TimedApp(fast, lambda _app: running.metrics)
    return BodyDeadline(AllowHeaderFix(timed, app), settings.http_body_timeout)


def app_from_env() -> Any:
    """Factory for granian workers: each process reads the environment once."""
    settings = load_settings()
    configure_logging(settings.log_level)
    return create_app(settings, settle=True)
