"""The tracking link served in front of Litestar: the service's hottest request, kept lean.

``GET /c/{id}`` is the one request every visitor makes, and answering it through the
framework (a ``Request``, routing, signature parsing, a ``Response`` object, its
conversion to ASGI messages) cost more CPU than everything the click itself needs. This
ASGI wrapper answers the plain case itself, with the very same code as the Litestar
route (``tracking.visit``) and the same headers and error bodies, and hands everything
else to Litestar untouched: HEAD, ids not written in plain decimal digits (the
canonical-id rule: Litestar answers those 404), out-of-range ids (400), other paths, and
any request before start-up has finished. The Litestar route stays the documented one
(OpenAPI) and answers whatever is handed on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar.types import ASGIApp, Receive, Send
from litestar.types import HTTPResponseBodyEvent as Body
from litestar.types import HTTPResponseStartEvent as Start

from bannertrack.api.errors import visitor_error_parts
from bannertrack.api.tracking import LINK_CACHE_CONTROL, Tracking, visit
from bannertrack.bootstrap.web import MAX_ID

# The route template Litestar would have set: request metrics label the link by it.
TEMPLATE = "/c/{banner_id}"
_PREFIX = "/c/"
_MAX_DIGITS = len(str(MAX_ID))
_REDIRECT_HEADERS = [
    (b"cache-control", LINK_CACHE_CONTROL.encode()),
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", b"0"),
]


def banner_id_of(scope: Any) -> int | None:
    """The id of a ``GET /c/{id}`` this path answers, or ``None`` to hand it on."""
    path: str = scope["path"]
    if scope["method"] != "GET" or not path.startswith(_PREFIX):
        return None
    digits = path[3:]
    if not (0 < len(digits) <= _MAX_DIGITS and digits.isascii() and digits.isdigit()):
        return None
    if digits[0] == "0":
        return None
    raw = scope.get("raw_path")
    # Percent-encoded on the wire (/c/%31) is not canonical. (Some clients' ASGI transports
    # leave the query in raw_path; servers do not.)
    if raw is not None and raw.split(b"?", 1)[0] != path.encode():
        return None
    banner_id = int(digits)
    return banner_id if banner_id <= MAX_ID else None


class LinkFastPath:
    def __init__(self, app: ASGIApp, tracking_of: Callable[[], Tracking | None]) -> None:
        self.app = app
        self._tracking_of = tracking_of

    def __call__(self, scope: Any, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "http":
            banner_id = banner_id_of(scope)
            if banner_id is not None:
                tracking = self._tracking_of()
                if tracking is not None:
                    return self._link(tracking, scope, banner_id, send)
        return self.app(scope, receive, send)

    async def _link(self, tracking: Tracking, scope: Any, banner_id: int, send: Send) -> None:
        scope["path_template"] = TEMPLATE
        scope["path_params"] = {"banner_id": banner_id}
        try:
            location = await visit(tracking, scope, banner_id)
        except Exception as exc:  # every error answers as the Litestar route's would
            # HTML to a browser, the JSON error to an API client.
            status, headers, body = visitor_error_parts(scope, exc)
            await send(Start(type="http.response.start", status=status, headers=headers))
            await send(Body(type="http.response.body", body=body, more_body=False))
            return
        headers = [(b"location", location.encode("latin-1")), *_REDIRECT_HEADERS]
        await send(Start(type="http.response.start", status=302, headers=headers))
        await send(Body(type="http.response.body", body=b"", more_body=False))
