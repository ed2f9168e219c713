"""The tracking link's fast path answers exactly as the Litestar route it stands in for.

The full app runs in-process; its Litestar app (under the ASGI wrappers) is driven
directly too, sharing the running service, so each GET is answered both ways on one
database and the answers are compared byte for byte.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.integration.test_hostile_input import store_target_as_is, total_clicks
from tests.support.banners import make_banner

from bannertrack.api.app import create_app
from bannertrack.api.link_fast_path import LinkFastPath, banner_id_of
from bannertrack.config import Settings

Client = AsyncTestClient[Litestar]


def litestar_of(app: Any) -> Any:
    """The Litestar app under the wrappers create_app puts around it."""
    while not isinstance(app, Litestar):
        app = app.app
    return app


def answer(r: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    return r.status_code, sorted(r.headers.items()), r.content


@asynccontextmanager
async def both(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """A client of the whole app, and one of its Litestar app alone (same service).

    Not a fixture: Litestar's lifespan must end in the task it began in."""
    # Both in this test's event loop: the test client would run the app in a thread of
    # its own, where the click writer's futures cannot be awaited from here.
    settings = Settings(database_url=database_url, admin_token=ADMIN_TOKEN)
    app = create_app(settings)
    litestar = litestar_of(app)

    def client_of(asgi: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t.local")

    async with litestar.lifespan(), client_of(app) as client, client_of(litestar) as route:
        yield client, route


async def test_the_same_answers_as_the_litestar_route(database_url: str) -> None:
    async with both(database_url) as (client, route):
        await same_answers(client, route, database_url)


async def same_answers(client: httpx.AsyncClient, route: httpx.AsyncClient, url: str) -> None:
    b = (await make_banner(client))["id"]
    gone = (await make_banner(client))["id"]
    assert (await client.delete(f"/api/v1/banners/{gone}", headers=ADMIN)).status_code == 204
    legacy = (await make_banner(client))["id"]
    await store_target_as_is(url, client, legacy, "https://shop.example/\r\nX: 1")
    headers = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}
    paths = [f"/c/{b}", f"/c/{b}?utm_source=news&utm_campaign=w48", f"/c/{gone}", "/c/424242"]
    paths += [f"/c/{legacy}"]
    for path in paths:
        fast = await client.get(path, headers=headers, follow_redirects=False)
        slow = await route.get(path, headers=headers, follow_redirects=False)
        assert answer(fast) == answer(slow), path
    assert await total_clicks(client, b) == 4  # two paths, each answered both ways
    assert await total_clicks(client, legacy) == 0
    # A prefetch is answered by the fast path and, as by the route, not counted.
    prefetch = {**headers, "sec-purpose": "prefetch"}
    fast = await client.get(f"/c/{b}", headers=prefetch, follow_redirects=False)
    slow = await route.get(f"/c/{b}", headers=prefetch, follow_redirects=False)
    assert answer(fast) == answer(slow) and fast.status_code == 302
    assert await total_clicks(client, b) == 4


@pytest.mark.parametrize(
    ("method", "path", "taken"),
    [
        ("GET", "/c/1", 1),
        ("GET", "/c/9223372036854775807", 9223372036854775807),
        ("HEAD", "/c/1", None),  # answered by the route: not counted
        ("GET", "/c/01", None),  # not canonical: the route's hook answers 404
        ("GET", "/c/+1", None),
        ("GET", "/c/0", None),  # out of range: the route's bounds answer 400
        ("GET", "/c/9223372036854775808", None),
        ("GET", "/c/\u0663", None),
        ("GET", "/c/1/", None),
        ("GET", "/c/", None),
        ("GET", "/i/1", None),
    ],
)
def test_which_requests_the_fast_path_takes(method: str, path: str, taken: int | None) -> None:
    assert banner_id_of({"method": method, "path": path, "raw_path": path.encode()}) == taken


def test_a_percent_encoded_id_is_handed_on() -> None:
    assert banner_id_of({"method": "GET", "path": "/c/1", "raw_path": b"/c/%31"}) is None
    assert banner_id_of({"method": "GET", "path": "/c/1", "raw_path": b"/c/%31?a=1"}) is None
    assert banner_id_of({"method": "GET", "path": "/c/1", "raw_path": b"/c/1?a=1"}) == 1


async def test_metrics_label_the_fast_path_by_the_route(client: Client) -> None:
    b = (await make_banner(client))["id"]
    assert (await client.get(f"/c/{b}", follow_redirects=False)).status_code == 302
    text = (await client.get("/metrics")).text
    assert 'route="/c/{banner_id}",status="302"' in text


async def test_before_start_up_every_request_is_handed_on() -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["path"])

    fast = LinkFastPath(inner, lambda: None)
    await fast({"type": "http", "method": "GET", "path": "/c/1", "raw_path": b"/c/1"}, None, None)
    assert seen == ["/c/1"]
