"""Typed dependencies of the handlers, resolved from the service running in the app.

Each is an app-level ``Provide`` of a plain function that returns a value built once at
start-up, so a request costs one call per dependency and nothing is constructed.
Litestar resolves two or more dependencies of one handler in a task group (a task each),
so the cached reads take one, a ``Repository``. The tracking link and the pixel, the
hottest handlers, read their ``Tracking`` bundle through a typed getter instead
(``tracking_routes``): a dependency costs them about 4 us a request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from litestar.di import Provide

from bannertrack.api.placements import Serving
from bannertrack.api.tracking import Tracking
from bannertrack.bootstrap import Service
from bannertrack.clicks.recording import ClickRecorder
from bannertrack.conversions.recording import ConversionRecorder
from bannertrack.errors import UnavailableError
from bannertrack.metrics import Metrics


@dataclass(frozen=True, slots=True)
class _Built:
    service: Service
    clicks: ClickRecorder
    tracking: Tracking
    serving: Serving
    conversions: ConversionRecorder


class Running:
    """The service of one app, between its start-up and its shutdown."""

    def __init__(self) -> None:
        self._built: _Built | None = None

    def start(self, service: Service) -> None:
        clicks = ClickRecorder(
            ingest=service.ingest,
            hasher=service.hasher,
            trusted_proxies=service.trusted_proxies,
            metrics=service.metrics,
        )
        tracking = Tracking(
            repository=service.repository,
            clicks=clicks,
            impressions=service.impressions,
            metrics=service.metrics,
            signer=service.signer,
        )
        serving = Serving(service.server, service.public_urls)
        conversions = ConversionRecorder(
            store=service.repository,
            window=timedelta(days=service.settings.conversion_window_days),
        )
        self._built = _Built(service, clicks, tracking, serving, conversions)

    def stop(self) -> None:
        self._built = None

    @property
    def built(self) -> _Built:
        if self._built is None:
            raise UnavailableError("the service is not running")
        return self._built

    def tracking(self) -> Tracking | None:
        """The tracking endpoints' parts, or ``None`` outside start-up..shutdown."""
        return None if self._built is None else self._built.tracking

    def serving(self) -> Serving | None:
        """The placement serve, or ``None`` outside start-up..shutdown."""
        return None if self._built is None else self._built.serving

    @property
    def metrics(self) -> Metrics | None:
        return None if self._built is None else self._built.service.metrics


def dependencies(running: Running) -> dict[str, Provide]:
    def provide(get: Callable[[], Any]) -> Provide:
        return Provide(get, sync_to_thread=False)

    return {
        "repository": provide(lambda: running.built.service.repository),
        "archive": provide(lambda: running.built.service.archive),
        "explorer": provide(lambda: running.built.service.explorer),
        "storage": provide(lambda: running.built.service.storage),
        "cache_admin": provide(lambda: running.built.service.cache_admin),
        "ingest": provide(lambda: running.built.service.ingest),
        "spool_stats": provide(lambda: running.built.service.spool_stats),
        "bus": provide(lambda: running.built.service.bus),
        "metrics": provide(lambda: running.built.service.metrics),
        "clicks": provide(lambda: running.built.clicks),
        "public_urls": provide(lambda: running.built.service.public_urls),
        "trusted_proxies": provide(lambda: running.built.service.trusted_proxies),
        "workers": provide(lambda: running.built.service.workers),
        "placements": provide(lambda: running.built.service.placements),
        "serving": provide(lambda: running.built.serving),
        "conversions": provide(lambda: running.built.conversions),
    }
