"""A PostgreSQL that goes away: cached entries are still served, misses answer 503.

The server stays up; the loopback proxy between the service and it is cut, which is
what a crashed server or a broken network looks like from the service.
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


@pytest.fixture
async def app_and_proxy(
    proxied_url: tuple[str, TcpProxy],
) -> AsyncIterator[tuple[AsyncTestClient[Litestar], TcpProxy]]:
    url, proxy = proxied_url
    settings = Settings(database_url=url, admin_token=ADMIN_TOKEN)  # type: ignore[call-arg]
    async with AsyncTestClient(create_app(settings)) as client:
        yield client, proxy


async def test_database_down_serves_cache_and_answers_503_on_miss(
    app_and_proxy: tuple[AsyncTestClient[Litestar], TcpProxy],
) -> None:
    client, proxy = app_and_proxy
    banner_id = (await make_banner(client))["id"]
    assert (await client.get(f"/c/{banner_id}", follow_redirects=False)).status_code == 302
    cached = (await client.get(f"/api/v1/banners/{banner_id}/with-stats")).json()

    proxy.stop()
    r = await client.get(f"/api/v1/banners/{banner_id}/with-stats")
    assert r.status_code == 200 and r.json() == cached
    r = await client.get("/api/v1/banners/top?limit=7")  # never loaded: a miss
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "database_unavailable"
    assert int(r.headers["retry-after"]) >= 1
    # A click cannot be stored: it is refused, not acknowledged and dropped.
    r = await client.get(f"/c/{banner_id}", follow_redirects=False)
    assert r.status_code == 503
    r = await client.get("/healthz")
    assert r.status_code == 503 and r.json()["checks"]["database"]["status"] == "down"

    proxy.start()
    r = await client.get("/api/v1/banners/top?limit=7")
    assert r.status_code == 200
    assert (await client.get(f"/c/{banner_id}", follow_redirects=False)).status_code == 302
    stats = (await client.get(f"/api/v1/banners/{banner_id}/stats")).json()
    assert stats["total_clicks"] == 2
