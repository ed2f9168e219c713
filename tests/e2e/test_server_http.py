"""A real server process on PostgreSQL, driven over real HTTP connections.

Litestar's test client runs requests one at a time, so concurrency over HTTP (the herd
of DESIGN.md's single-flight promise) is checked here against ``bannertrack api``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import ADMIN_TOKEN
from tests.support.banners import make_banner
from tests.support.metrics import metric
from tests.support.server import ServerProcess
from tests.support.services import PostgresFactory


@pytest.fixture(scope="module")
def server(
    postgres: PostgresFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    url = postgres.create()
    log = tmp_path_factory.mktemp("server-http") / "server.log"
    try:
        with ServerProcess(url, log, env={"BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN}) as srv:
            yield srv
    finally:
        postgres.drop(url)


async def test_200_concurrent_requests_for_a_cold_key_cost_one_load(server: ServerProcess) -> None:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as http:
        banner_id = (await make_banner(http, name="herd"))["id"]
        # Open the 200 connections first, so the herd below is 200 requests in flight.
        await asyncio.gather(*(http.get("/healthz") for _ in range(200)))
        before = metric((await http.get("/metrics")).text, "bannertrack_db_queries_total")
        started = time.monotonic()
        responses = await asyncio.gather(
            *(http.get(f"/api/v1/banners/{banner_id}/with-stats") for _ in range(200))
        )
        elapsed = time.monotonic() - started
        after = metric((await http.get("/metrics")).text, "bannertrack_db_queries_total")
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    # One load of banner:{id}, one of click_stats:{id} (banner_stats is built from them),
    # plus the impression view's refresh: one query per 0.5 s in the background. A herd
    # that single-flight failed to stop would cost hundreds.
    background = math.ceil((elapsed + 0.5) / 0.5)
    assert 2 <= after - before <= 2 + background


async def test_metrics_of_a_real_server(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        await http.get("/api/v1/banners/top")
        r = await http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert metric(r.text, "bannertrack_cache_misses_total", namespace="top_banners") >= 1
    assert 'route="/api/v1/banners/top"' in r.text
    # On PostgreSQL without Redis, LISTEN/NOTIFY is the invalidation bus.
    assert metric(r.text, "bannertrack_bus_connected", kind="postgres") == 1
