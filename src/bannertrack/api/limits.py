"""A deadline on the request body, the one slow-client limit granian does not offer.

granian bounds the time to send headers (``http1_settings.header_read_timeout``) but not
the body: a client sending one byte every few seconds holds its request, and one of the
worker's concurrent-request slots (granian's backpressure), for as long as it likes.
Here the whole body must arrive within ``seconds`` of the request's start, or the read
fails with 408 and the request ends, freeing its slot.

Only body messages are bounded: once the body is complete, ``receive`` is what a
streaming response listens on for the client's disconnect, and that wait is unbounded.
An HTTP/1 request with neither ``Content-Length`` nor ``Transfer-Encoding`` has no body
(RFC 9112, 6.3), so it is handed on untouched: the tracking link and the reads pay
nothing here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from litestar.exceptions import HTTPException

_BODY_HEADERS = (b"content-length", b"transfer-encoding")


def has_body(scope: Any) -> bool:
    """Whether the request can carry a body (over HTTP/2 one needs no length header)."""
    if scope.get("http_version") not in ("1.0", "1.1"):
        return True
    return any(name in _BODY_HEADERS for name, _ in scope["headers"])


class BodyDeadline:
    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self._seconds = seconds

    def __call__(self, scope: Any, receive: Any, send: Any) -> Awaitable[None]:
        # A plain function handing back the inner app's awaitable when there is no body
        # to time: no frame of its own on those requests.
        if scope["type"] != "http" or not has_body(scope):
            return self.app(scope, receive, send)  # type: ignore[no-any-return]
        return self._timed(scope, receive, send)

    async def _timed(self, scope: Any, receive: Any, send: Any) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._seconds
        body_done = False

        async def timed_receive() -> Any:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(
                    status_code=408,
                    detail=f"request body not received within {self._seconds:g}s",
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, timed_receive, send)
