"""``OPTIONS`` answers with every method of its path.

Litestar 2 builds a path's automatic OPTIONS handler when the path's first handler is
registered and never updates it, so ``OPTIONS /api/v1/banners/1`` said ``DELETE,
OPTIONS`` though GET and PUT answer there too (litestar-org/litestar#4169, fixed only
in Litestar 3). This hook rewrites the ``Allow`` header of that automatic answer from
the app's final routes, read once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.types import Message, Scope

BeforeSend = Callable[[Message, Scope], Awaitable[None]]


def allow_header_fix() -> BeforeSend:
    allowed: dict[str, bytes] = {}

    def methods_of(app: Litestar, template: str) -> bytes | None:
        if not allowed:
            for route in app.routes:
                if isinstance(route, HTTPRoute):
                    allowed[route.path_format] = ", ".join(sorted(route.methods)).encode()
        return allowed.get(template)

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
            return
        methods = methods_of(scope["litestar_app"], scope.get("path_template", ""))
        if methods is None:
            return
        headers: list[Any] = [(k, v) for k, v in message.get("headers", []) if k != b"allow"]
        headers.append((b"allow", methods))
        message["headers"] = headers

    return before_send
