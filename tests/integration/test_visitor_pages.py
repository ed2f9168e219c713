"""A browser never gets a JSON error from the tracking link: it gets a small HTML page.

API clients (no ``text/html`` in Accept) keep the JSON error. Both the link's fast path
(GET) and the Litestar route (HEAD, handed on) answer alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.conftest import ADMIN_TOKEN
from tests.support.banners import make_banner
from tests.support.proxy import TcpProxy

from bannertrack.api.app import create_app
from bannertrack.config import Settings

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_an_unknown_banner_gives_a_browser_a_page_and_a_client_json(
    client: AsyncTestClient[Litestar],
) -> None:
    for method in ("GET", "HEAD"):
        r = await client.request(method, "/c/987654", headers=BROWSER)
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("text/html")
        if method == "GET":
            assert "<h1>This link leads nowhere</h1>" in r.text and "987654" not in r.text
        r = await client.request(method, "/c/987654", headers={"Accept": "application/json"})
        assert r.status_code == 404 and r.headers["content-type"] == "application/json"
        if method == "GET":
            assert r.json()["error"]["code"] == "not_found"
    banner = (await make_banner(client))["id"]
    r = await client.get(f"/c/{banner}", headers=BROWSER, follow_redirects=False)
    assert r.status_code == 302  # the page is for errors only


@pytest.fixture
async def pg_app(
    proxied_url: tuple[str, TcpProxy],
) -> AsyncIterator[tuple[AsyncTestClient[Litestar], TcpProxy]]:
    url, proxy = proxied_url
    settings = Settings(  # type: ignore[call-arg]
        database_url=url, admin_token=ADMIN_TOKEN, spool_enabled=False
    )
    async with AsyncTestClient(create_app(settings)) as c:
        yield c, proxy


async def test_a_503_gives_a_browser_a_page_with_retry_after(
    pg_app: tuple[AsyncTestClient[Litestar], TcpProxy],
) -> None:
    client, proxy = pg_app
    banner = (await make_banner(client))["id"]
    proxy.stop()  # the banner was never read: a miss, and no spool (turned off)
    r = await client.get(f"/c/{banner}", headers=BROWSER)
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert r.headers["content-type"].startswith("text/html")
    assert "not available right now" in r.text and "database" not in r.text
    r = await client.get(f"/c/{banner}")
    assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
    proxy.start()
