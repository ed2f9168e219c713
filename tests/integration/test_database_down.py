"""A PostgreSQL that goes away: cached entries are still served, misses answer 503, and
clicks go to the outage spool (or, with the spool turned off, are refused with 503).

The server stays up; the loopback proxy between the service and it is cut, which is
what a crashed server or a broken network looks like from the service.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.conftest import ADMIN_TOKEN
from tests.integration.test_dashboard_http import sign_in
from tests.support.banners import make_banner
from tests.support.proxy import TcpProxy

from bannertrack.api.app import create_app
from bannertrack.config import Settings


@pytest.fixture(params=[False, True], ids=["spool-off", "spool-on"])
async def app_and_proxy(
    proxied_url: tuple[str, TcpProxy], request: pytest.FixtureRequest
) -> AsyncIterator[tuple[AsyncTestClient[Litestar], TcpProxy]]:
    url, proxy = proxied_url
    settings = Settings(  # type: ignore[call-arg]
        database_url=url, admin_token=ADMIN_TOKEN, spool_enabled=request.param
    )
    async with AsyncTestClient(create_app(settings)) as client:
        yield client, proxy


async def test_database_down_serves_cache_and_answers_503_on_miss(
    app_and_proxy: tuple[AsyncTestClient[Litestar], TcpProxy],
) -> None:
    client, proxy = app_and_proxy
    spooling = "spool-on" in os.environ.get("PYTEST_CURRENT_TEST", "")
    banner_id = (await make_banner(client))["id"]
    assert (await client.get(f"/c/{banner_id}", follow_redirects=False)).status_code == 302
    # Stored (a cold first batch may take longer than spool_after and be replayed).
    deadline = time.monotonic() + 20
    while (await client.get(f"/api/v1/banners/{banner_id}/stats")).json()["total_clicks"] != 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    cached = (await client.get(f"/api/v1/banners/{banner_id}/with-stats")).json()
    await sign_in(client)  # /ops shows the spool (a file session: no database needed)
    ops = (await client.get("/ops")).text
    if spooling:
        assert 'data-spool-state="healthy" data-spool-clicks="0"' in ops
    else:
        assert "The outage spool is turned off" in ops

    proxy.stop()
    r = await client.get(f"/api/v1/banners/{banner_id}/with-stats")
    assert r.status_code == 200 and r.json() == cached
    r = await client.get("/api/v1/banners/top?limit=7")  # never loaded: a miss
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "database_unavailable"
    assert int(r.headers["retry-after"]) >= 1
    r = await client.get(f"/c/{banner_id}", follow_redirects=False)
    if spooling:
        # The click is kept on this instance's disk; the visitor is redirected at once.
        assert r.status_code == 302
        r = await client.get("/healthz")
        checks = r.json()["checks"]
        assert r.status_code == 200 and r.json()["status"] == "degraded"
        assert checks["database"]["status"] == "degraded"
        assert checks["spool"]["status"] == "degraded" and checks["spool"]["clicks"] == 1
        ops = await client.get("/ops")
        assert ops.status_code == 200
        assert 'data-spool-state="spooling" data-spool-clicks="1"' in ops.text
    else:
        # The negative control: the click cannot be stored and is refused, not dropped.
        assert r.status_code == 503
        r = await client.get("/healthz")
        assert r.status_code == 503 and r.json()["checks"]["database"]["status"] == "down"

    proxy.start()
    deadline = time.monotonic() + 20
    while (r := await client.get("/api/v1/banners/top?limit=7")).status_code != 200:
        assert time.monotonic() < deadline, r.text  # the replay finds the database again
        await asyncio.sleep(0.1)
    assert (await client.get(f"/c/{banner_id}", follow_redirects=False)).status_code == 302
    want = 3 if spooling else 2
    while (await client.get(f"/api/v1/banners/{banner_id}/stats")).json()["total_clicks"] != want:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    if spooling:
        ops = (await client.get("/ops")).text
        row = re.search(r'<tr data-spool-worker="\d+" data-spool-state="(\w+)".*?</tr>', ops, re.S)
        assert row and row.group(1) == "healthy", ops
        assert re.search(r"<time datetime=\"[^\"]+\"[^>]*>[\d.]+ s ago</time>", row.group(0))
        health = (await client.get("/healthz")).json()["checks"]["spool"]
        # At least the click taken while down (the next may have followed it through).
        assert health["last_replay_at"] is not None and health["replayed_clicks"] >= 1
        assert f">{health['replayed_clicks']} clicks<" in row.group(0)
