"""Cache management over HTTP and /metrics, over SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.conftest import ADMIN
from tests.integration.test_api import assert_error
from tests.support.banners import make_banner

Client = AsyncTestClient[Litestar]

STAT_FIELDS = {"hits", "misses", "sets", "deletes", "expirations", "evictions", "size", "hit_rate"}


async def stats(client: Client) -> dict[str, Any]:
    r = await client.get("/api/v1/cache/stats")
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


async def test_stats_fields_and_exact_counts(client: Client) -> None:
    b = await make_banner(client)
    base = await stats(client)
    assert set(base) >= STAT_FIELDS and base["hit_rate"].endswith("%")
    assert set(base["namespaces"]) >= {"banner", "click_stats", "banner_stats", "top_banners"}
    for _ in range(4):
        assert (await client.get(f"/api/v1/banners/{b['id']}")).status_code == 200
    after = await stats(client)
    banner_ns = after["namespaces"]["banner"]
    before_ns = base["namespaces"]["banner"]
    # One miss loads the entry, the three reads after it hit.
    assert banner_ns["misses"] - before_ns["misses"] == 1
    assert banner_ns["hits"] - before_ns["hits"] == 3
    assert banner_ns["size"] == 1


async def test_clear_warm_and_invalidate(client: Client) -> None:
    banners = [await make_banner(client, i) for i in range(3)]
    r = await client.post("/api/v1/cache/warm", headers=ADMIN)
    assert r.status_code == 200
    body = r.json()
    # Each active banner: banner, click_stats, banner_stats; plus five top lists.
    assert body["loaded"] == 3 * 3 + 5 and body["seconds"] >= 0
    assert (await stats(client))["size"] == 14
    again = (await client.post("/api/v1/cache/warm", headers=ADMIN)).json()
    assert again["loaded"] == 0  # everything was already there

    one = banners[0]["id"]
    r = await client.post(f"/api/v1/cache/banner/{one}/invalidate", headers=ADMIN)
    assert r.status_code == 200 and r.json()["removed"] == 3 + 5
    r = await client.post("/api/v1/cache/namespace/banner/invalidate", headers=ADMIN)
    assert r.status_code == 200 and r.json()["removed"] == 2
    assert_error(await client.post("/api/v1/cache/namespace/bogus/invalidate", headers=ADMIN), 400)
    r = await client.post("/api/v1/cache/clear", headers=ADMIN)
    assert r.status_code == 200 and r.json()["cleared"] == 4
    assert (await stats(client))["size"] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cache/clear",
        "/api/v1/cache/warm",
        "/api/v1/cache/banner/1/invalidate",
        "/api/v1/cache/namespace/banner/invalidate",
    ],
)
async def test_admin_endpoints_need_the_token(client: Client, path: str) -> None:
    assert_error(await client.post(path), 401, "unauthorized")
    assert_error(
        await client.post(path, headers={"Authorization": "Bearer nope"}), 401, "unauthorized"
    )
    assert_error(await client.post(path, headers={"Authorization": "Basic abc"}), 401)


@pytest.mark.parametrize("settings_overrides", [{"admin_token": ""}])
async def test_admin_endpoints_refused_when_no_token_is_configured(client: Client) -> None:
    r = await client.post("/api/v1/cache/clear", headers={"Authorization": "Bearer "})
    assert_error(r, 403, "forbidden")
    assert (await client.get("/api/v1/cache/stats")).status_code == 200


@pytest.mark.parametrize("settings_overrides", [{"cache_enabled": False}])
async def test_cache_switched_off(client: Client) -> None:
    b = await make_banner(client)
    assert (await client.get(f"/api/v1/banners/{b['id']}/with-stats")).status_code == 200
    body = await stats(client)
    assert body["enabled"] is False
    # Typed clients read the same fields either way: every figure is there, and zero.
    assert (body["hits"], body["misses"], body["size"], body["max_entries"]) == (0, 0, 0, 0)
    assert [w["pid"] for w in body["workers"]] == [body["answered_by"]]
    assert_error(await client.post("/api/v1/cache/clear", headers=ADMIN), 409, "cache_disabled")


async def test_metrics_exposition(client: Client) -> None:
    b = await make_banner(client)
    await client.get(f"/c/{b['id']}", follow_redirects=False)
    await client.get("/c/99999", follow_redirects=False)
    for _ in range(3):
        await client.get(f"/api/v1/banners/{b['id']}/with-stats")
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples["bannertrack_clicks_recorded_total"] == 1
    assert samples['bannertrack_unknown_banner_requests_total{endpoint="click"}'] == 1
    assert samples['bannertrack_cache_hits_total{namespace="banner_stats"}'] == 2
    assert samples['bannertrack_cache_entries{namespace="banner"}'] >= 1
    assert samples["bannertrack_db_queries_total"] > 0
    route = 'method="GET",route="/api/v1/banners/{banner_id}/with-stats",status="200"'
    assert samples[f"bannertrack_request_seconds_count{{{route}}}"] == 3
