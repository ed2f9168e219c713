"""The ASGI wrappers around the app touch only the requests they are for."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.exceptions import HTTPException

from bannertrack.api.allow import AllowHeaderFix
from bannertrack.api.limits import BodyDeadline


class Spy:
    def __init__(self) -> None:
        self.seen: list[tuple[Any, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.seen.append((receive, send))
        await receive()


def http_scope(method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return {
        "type": "http",
        "method": method,
        "http_version": "1.1",
        "headers": headers or [(b"host", b"t"), (b"user-agent", b"x")],
    }


async def never() -> Any:
    await asyncio.sleep(3600)  # an app that never answers: the wrapper's bound must end it


async def test_a_request_without_a_body_gets_receive_untouched() -> None:
    spy = Spy()

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: Any) -> None: ...

    await BodyDeadline(spy, 0.01)(http_scope(), receive, send)
    assert spy.seen == [(receive, send)]


@pytest.mark.parametrize(
    "scope",
    [
        http_scope("POST", [(b"content-length", b"10")]),
        http_scope("POST", [(b"transfer-encoding", b"chunked")]),
        {**http_scope("POST", []), "http_version": "2"},  # HTTP/2 needs no length header
    ],
)
async def test_a_body_that_does_not_arrive_in_time_is_408(scope: Any) -> None:
    async def send(_: Any) -> None: ...

    with pytest.raises(HTTPException) as raised:
        await BodyDeadline(Spy(), 0.05)(scope, never, send)
    assert raised.value.status_code == 408


async def test_only_options_requests_get_a_wrapped_send() -> None:
    @get("/x")
    async def x() -> str:
        return "x"

    app = Litestar([x])
    spy = Spy()
    fix = AllowHeaderFix(spy, app)

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: Any) -> None: ...

    await fix(http_scope("GET"), receive, send)
    await fix(http_scope("OPTIONS"), receive, send)
    assert spy.seen[0] == (receive, send)
    assert spy.seen[1][0] is receive and spy.seen[1][1] is not send
