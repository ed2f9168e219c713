"""Request latency per route template: the ASGI wrapper that feeds ``Metrics``.

It wraps the whole app (fast paths included), so every request is timed once; the label
values come from fixed sets, so no request can add a series.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from time import perf_counter
from typing import Any

from bannertrack.metrics import Metrics

# Every label value of the request histogram comes from a fixed set, whatever a client
# sends: an invented method or path must not add a label set (each one is permanent
# memory, and a scrape renders them all).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"
UNMATCHED_ROUTE = "unmatched"
_TYPED_PARAM = re.compile(r"\{(\w+):\w+\}")


def status_label(status: int) -> str:
    return str(status) if 100 <= status <= 599 else "other"


class TimedApp:
    """The ASGI app with request latency observed per route template around it.

    Outside Litestar's middleware stack on purpose: there every middleware brings a layer
    of exception handling of its own, which cost about 15 us of a 77 us cached request
    here. The route template is set in the scope by Litestar's router, so it is read
    after the call; it counts only when it is one of the app's own routes.
    """

    def __init__(self, app: Any, metrics_of: Callable[[Any], Metrics | None]) -> None:
        self.app = app
        self._metrics_of = metrics_of
        routes = getattr(app, "route_handler_method_map", None)
        # The router's scope["path_template"] names parameters without their type
        # ("/c/{banner_id}"), the handler map with it ("/c/{banner_id:int}").
        self._routes: frozenset[str] | None = (
            frozenset(_TYPED_PARAM.sub(r"{\1}", r) for r in routes) if routes is not None else None
        )
        # Labelled children by (method, route, status): labels() on every request costs
        # more than the observation. Bounded by routes x methods x statuses, all fixed sets.
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = perf_counter()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._observe(scope, status, perf_counter() - started)

    def _labels(self, scope: Any, status: int) -> tuple[str, str, int]:
        method = scope["method"]
        if method not in KNOWN_METHODS:
            method = OTHER_METHOD
        route = scope.get("path_template", UNMATCHED_ROUTE)
        if self._routes is not None and route not in self._routes:
            route = UNMATCHED_ROUTE
        return method, route, status if 100 <= status <= 599 else 0

    def _observe(self, scope: Any, status: int, elapsed: float) -> None:
        key = self._labels(scope, status)
        child = self._children.get(key)
        if child is None:
            metrics = self._metrics_of(self.app)
            if metrics is None:  # before start-up completed
                return
            child = metrics.request_seconds.labels(key[0], key[1], status_label(key[2]))
            self._children[key] = child
        child.observe(elapsed)
