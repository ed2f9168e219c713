"""``OPTIONS`` answers with every method of its path.

Litestar 2 builds a path's automatic OPTIONS handler when the path's first handler is
registered and never updates it, so ``OPTIONS /api/v1/banners/1`` said ``DELETE,
OPTIONS`` though GET and PUT answer there too (litestar-org/litestar#4169, fixed only
in Litestar 3). This wrapper rewrites the ``Allow`` header of that automatic answer from
the app's final routes, read once.

An ASGI wrapper, not a Litestar ``before_send`` hook: with any such hook Litestar wraps
``send`` for every message of every request (3 % of the tracking link's CPU), while
this only touches OPTIONS requests and hands every other one on as it came.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Message, Receive, Scope, Send


class AllowHeaderFix:
    def __init__(self, app: ASGIApp, litestar: Litestar) -> None:
        self.app = app
        self._litestar = litestar
        self._allowed: dict[str, bytes] | None = None

    def __call__(self, scope: Any, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function handing back the inner app's awaitable: no frame of its own
        # on the requests it leaves alone.
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            return self.app(scope, receive, send)
        return self._options(scope, receive, send)

    async def _options(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def fixed(message: Message) -> None:
            if message["type"] == "http.response.start":
                methods = self._methods_of(scope.get("path_template", ""))
                if methods is not None:
                    headers: list[Any] = [
                        (k, v) for k, v in message.get("headers", []) if k != b"allow"
                    ]
                    headers.append((b"allow", methods))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, fixed)

    def _methods_of(self, template: str) -> bytes | None:
        if self._allowed is None:
            self._allowed = {
                route.path_format: ", ".join(sorted(route.methods)).encode()
                for route in self._litestar.routes
                if isinstance(route, HTTPRoute)
            }
        return self._allowed.get(template)
