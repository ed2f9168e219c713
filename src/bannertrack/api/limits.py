"""A deadline on the request body, the one slow-client limit granian does not offer.

granian bounds the time to send headers (``http1_settings.header_read_timeout``) but not
the body: a client sending one byte every few seconds holds its request, and one of the
worker's concurrent-request slots (granian's backpressure), for as long as it likes.
Here the whole body must arrive within ``seconds`` of the request's start, or the read
fails with 408 and the request ends, freeing its slot.

Only body messages are bounded: once the body is complete, ``receive`` is what a
streaming response listens on for the client's disconnect, and that wait is unbounded.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.exceptions import HTTPException


class BodyDeadline:
    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self._seconds = seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
