"""Counts a marketer can trust over HTTP (SQLite and PostgreSQL, the full app in-process)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.conftest import ADMIN, INGEST
from tests.integration.test_api import assert_error
from tests.support.banners import make_banner
from tests.support.waiting import wait_until

from bannertrack.api.tracking import PIXEL
from bannertrack.clicks.export import COLUMNS

Client = AsyncTestClient[Litestar]

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


async def report(
    client: Client, banner_id: int, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    r = await client.post(
        f"/api/v1/banners/{banner_id}/clicks", json=body, headers={**INGEST, **(headers or {})}
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def stats_of(client: Client, banner_id: int) -> dict[str, Any]:
    r = await client.get(f"/api/v1/banners/{banner_id}/stats")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_recorded_clicks_say_what_was_set_apart(client: Client) -> None:
    b = (await make_banner(client))["id"]
    first = await report(client, b, ip="198.51.100.7", user_agent=CHROME)
    assert (first["bot"], first["repeat"], first["bot_reason"]) == (False, False, None)
    again = await report(client, b, ip="198.51.100.7", user_agent=CHROME)
    assert (again["bot"], again["repeat"]) == (False, True)
    bot = await report(client, b, ip="66.249.66.1", user_agent=GOOGLEBOT)
    assert bot["bot"] and bot["bot_reason"] == "crawler:Googlebot/" and not bot["repeat"]
    # No user agent in the report: unreported, not the reporting server's own agent (which
    # is a crawler), so the click is not flagged.
    tool = await report(client, b, {"User-Agent": "python-requests/2.32"}, ip="198.51.100.8")
    assert (tool["bot"], tool["bot_reason"], tool["repeat"]) == (False, None, False)

    s = await stats_of(client, b)
    assert set(s) >= {"valid_clicks", "bot_clicks", "repeat_clicks", "impressions", "ctr"}
    assert (s["total_clicks"], s["valid_clicks"], s["bot_clicks"], s["repeat_clicks"]) == (
        4,
        2,
        1,
        1,
    )
    assert s["impressions"] == 0 and s["ctr"] is None
    ws = (await client.get(f"/api/v1/banners/{b}/with-stats")).json()
    assert ws["stats"] == s


async def test_pixel_counts_impressions_without_emptying_the_stats_cache(client: Client) -> None:
    b = (await make_banner(client))["id"]
    await report(client, b, ip="198.51.100.7", user_agent=CHROME)
    await stats_of(client, b)  # loads click_stats:{id}
    before = (await client.get("/api/v1/cache/stats")).json()["namespaces"]["click_stats"]

    for _ in range(8):
        r = await client.get(f"/i/{b}", headers={"User-Agent": CHROME})
        assert r.status_code == 200 and r.content == PIXEL
        assert r.headers["content-type"] == "image/gif"
        assert r.headers["cache-control"] == "no-store"
    assert (await client.head(f"/i/{b}")).status_code == 200
    r = await client.get(f"/i/{b}", headers={"Sec-Purpose": "prefetch"})
    assert r.status_code == 200 and r.content == PIXEL

    seen: list[dict[str, Any]] = []

    async def counted() -> bool:
        seen.append(await stats_of(client, b))
        return bool(seen[-1]["impressions"] == 8)

    # The flush interval and the impressions' TTL: about a second.
    await wait_until(counted, timeout=5, interval=0.05, what=lambda: f"stats: {seen[-1]}")
    s = seen[-1]
    assert s["ctr"] == pytest.approx(1 / 8)
    after = (await client.get("/api/v1/cache/stats")).json()["namespaces"]["click_stats"]
    assert after["misses"] == before["misses"], "impressions emptied the stats cache"
    ws = (await client.get(f"/api/v1/banners/{b}/with-stats")).json()
    assert ws["stats"]["impressions"] == 8

    # A click still invalidates at once (read-after-write), impressions stay.
    await report(client, b, ip="198.51.100.9", user_agent=CHROME)
    s = await stats_of(client, b)
    assert (s["valid_clicks"], s["impressions"], s["ctr"]) == (2, 8, pytest.approx(2 / 8))

    assert_error(await client.get("/i/987654"), 404, "not_found")
    metrics = (await client.get("/metrics")).text
    assert 'bannertrack_unknown_banner_requests_total{endpoint="impression"} 1.0' in metrics
    assert "bannertrack_impressions_recorded_total 8.0" in metrics


async def test_top_and_series_take_count(client: Client) -> None:
    noisy = (await make_banner(client, 1))["id"]
    honest = (await make_banner(client, 2))["id"]
    for _ in range(3):
        await report(client, noisy, ip="66.249.66.1", user_agent=GOOGLEBOT)
    await report(client, noisy, ip="198.51.100.1", user_agent=CHROME)
    for i in range(2):
        await report(client, honest, ip=f"198.51.100.{10 + i}", user_agent=CHROME)

    def ranking(body: dict[str, Any]) -> list[tuple[int, int]]:
        return [(i["banner"]["id"], i["clicks"]) for i in body["items"]]

    top = (await client.get("/api/v1/banners/top", params={"limit": 2})).json()
    assert ranking(top) == [(noisy, 4), (honest, 2)] and set(top) == {"limit", "items"}
    top = (await client.get("/api/v1/banners/top", params={"limit": 2, "count": "valid"})).json()
    assert ranking(top) == [(honest, 2), (noisy, 1)]
    # A click invalidates the valid ranking too (same top_banners: prefix).
    for i in range(2):
        await report(client, noisy, ip=f"198.51.100.{20 + i}", user_agent=CHROME)
    top = (await client.get("/api/v1/banners/top", params={"limit": 2, "count": "valid"})).json()
    assert ranking(top) == [(noisy, 3), (honest, 2)]
    assert_error(await client.get("/api/v1/banners/top", params={"count": "all"}), 400)

    now = datetime.now(UTC)
    params = {
        "from": (now - timedelta(minutes=5)).isoformat(),
        "to": (now + timedelta(minutes=1)).isoformat(),
        "interval": "minute",
    }
    url = f"/api/v1/banners/{noisy}/clicks"
    total = (await client.get(url, params=params)).json()
    valid = (await client.get(url, params={**params, "count": "valid"})).json()
    assert sum(p["clicks"] for p in total["points"]) == 6
    assert sum(p["clicks"] for p in valid["points"]) == 3
    assert set(valid) == {"banner_id", "from", "to", "interval", "points"}


async def test_csv_export(client: Client) -> None:
    b = (await make_banner(client))["id"]
    await report(client, b, ip="203.0.113.77", user_agent=CHROME, referrer="https://news.example/")
    await report(client, b, ip="203.0.113.77", user_agent=CHROME)
    await report(client, b, ip="66.249.66.1", user_agent=GOOGLEBOT)
    await report(client, b, ip="198.51.100.3", user_agent="=HYPERLINK(1)")

    url = f"/api/v1/banners/{b}/clicks.csv"
    assert_error(await client.get(url), 401)
    r = await client.get(url, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert int(r.headers["x-clicks-estimate"]) >= 4
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 4
    assert [(x["bot"], x["repeat"]) for x in rows] == [
        ("false", "false"),
        ("false", "true"),
        ("true", "false"),
        ("false", "false"),
    ]
    assert rows[0]["referrer"] == "https://news.example/" and "ip_prefix" not in rows[0]
    assert rows[0]["visitor"] == rows[1]["visitor"] and len(rows[0]["visitor"]) == 32
    assert rows[2]["bot_reason"] == "crawler:Googlebot/"
    assert rows[3]["user_agent"] == "'=HYPERLINK(1)"  # not a formula in a spreadsheet
    assert "203.0.113." not in r.text  # neither the address nor its network

    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = await client.get(url, params={"from": future}, headers=ADMIN)
    assert r.status_code == 400
    r = await client.get(
        url, params={"from": "2000-01-01T00:00:00Z", "to": "2000-01-02T00:00:00Z"}, headers=ADMIN
    )
    assert r.status_code == 200 and r.text.strip() == ",".join(COLUMNS)
    assert_error(await client.get("/api/v1/banners/987654/clicks.csv", headers=ADMIN), 404)
