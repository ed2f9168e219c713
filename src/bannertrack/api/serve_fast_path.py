"""The placement serve answered in front of Litestar, as the tracking link is.

``GET /p/{id}`` is asked once per page view: through the framework (a ``Request``,
routing, a dependency, query parsing, a ``Response``) it cost more CPU than the choice
itself. This ASGI wrapper answers the plain cases itself, ``GET /p/{id}`` with no query or
``format=html`` / ``format=json`` alone, with the very same code as the Litestar route
(``api.placements.Serving``) and the same headers and error bodies,
and hands everything else to Litestar untouched: HEAD, any other query (Litestar
validates it), ids not in plain decimal digits, and any request before start-up has
finished. The Litestar route stays the documented one (OpenAPI).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.types import ASGIApp, Receive, Send
from litestar.types import HTTPResponseBodyEvent as Body
from litestar.types import HTTPResponseStartEvent as Start

from bannertrack.api.errors import error_body, error_parts
from bannertrack.api.placements import Serving
from bannertrack.bootstrap.web import MAX_ID

TEMPLATE = "/p/{placement_id}"  # the route template request metrics label it by
_PREFIX = "/p/"
_MAX_DIGITS = len(str(MAX_ID))
_FORMATS = {b"": False, b"format=html": False, b"format=json": True}


def placement_id_of(scope: Any) -> int | None:
    """The id of a ``GET /p/{id}`` this path answers, or ``None`` to hand it on."""
    path: str = scope["path"]
    if scope["method"] != "GET" or not path.startswith(_PREFIX):
        return None
    digits = path[3:]
    if not (0 < len(digits) <= _MAX_DIGITS and digits.isascii() and digits.isdigit()):
        return None
    if digits[0] == "0" or scope.get("query_string", b"") not in _FORMATS:
        return None
    raw = scope.get("raw_path")
    if raw is not None and raw.split(b"?", 1)[0] != path.encode():
        return None  # percent-encoded on the wire: not canonical, Litestar answers
    placement_id = int(digits)
    return placement_id if placement_id <= MAX_ID else None


class ServeFastPath:
    def __init__(self, app: ASGIApp, serving_of: Callable[[], Serving | None]) -> None:
        self.app = app
        self._serving_of = serving_of

    def __call__(self, scope: Any, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "http":
            placement_id = placement_id_of(scope)
            if placement_id is not None:
                serving = self._serving_of()
                if serving is not None:
                    return self._serve(serving, scope, placement_id, send)
        return self.app(scope, receive, send)

    async def _serve(self, serving: Serving, scope: Any, placement_id: int, send: Send) -> None:
        scope["path_template"] = TEMPLATE
        scope["path_params"] = {"placement_id": placement_id}
        as_json = _FORMATS[scope.get("query_string", b"")]
        try:
            answer = await serving.answer(scope, placement_id, as_json)
        except Exception as exc:  # every error answers as the Litestar route's would
            status, code, message, extra = error_parts(exc)
            body = error_body(code, message)
            headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ]
            await send(Start(type="http.response.start", status=status, headers=headers))
            await send(Body(type="http.response.body", body=body, more_body=False))
            return
        media = answer.media + ("; charset=utf-8" if answer.media.startswith("text/") else "")
        headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()
        ]
        headers += [
            (b"content-type", media.encode()),
            (b"content-length", str(len(answer.body)).encode()),
        ]
        await send(Start(type="http.response.start", status=answer.status, headers=headers))
        await send(Body(type="http.response.body", body=answer.body, more_body=False))
