"""The range API and the server-rendered dashboard over HTTP (SQLite and PostgreSQL).

The page is parsed as HTML here (no browser): every figure it shows must equal what
``/api/v1/totals`` answers for the very range the page states in its markup.
"""

from __future__ import annotations

import base64
import html
import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.integration.test_api import assert_error
from tests.support.banners import make_banner
from tests.support.waiting import wait_until

Client = AsyncTestClient[Litestar]
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


async def traffic(client: Client, banner_id: int) -> None:
    """Two valid clicks, a repeat, a bot, and three impressions on one banner."""
    for ua in ("agent-a", "agent-b", "agent-a", GOOGLEBOT):
        r = await client.post(
            f"/api/v1/banners/{banner_id}/clicks",
            json={"ip": "203.0.113.9", "user_agent": ua},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
    for _ in range(3):
        assert (await client.get(f"/i/{banner_id}")).status_code == 200


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, "the page has a form with a CSRF token"
    return html.unescape(m.group(1))


async def sign_in(client: Client) -> str:
    """Sign in through /login; the CSRF token of the session that follows."""
    form = (await client.get("/login")).text
    r = await client.post(
        "/login", data={"csrf": csrf_of(form), "token": ADMIN_TOKEN}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    return csrf_of((await client.get("/banners")).text)


def page_range(page: str) -> dict[str, str]:
    m = re.search(r'data-period data-from="([^"]+)" data-to="([^"]+)"', page)
    assert m, "the page states its range"
    return {"from": html.unescape(m.group(1)), "to": html.unescape(m.group(2))}


def figures(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-figure="(\w+)" data-value="([^"]*)"', page))


async def eventually_totals(client: Client, path: str, params: dict[str, str]) -> dict[str, Any]:
    """Impressions are written in the background; wait until all three are in."""
    seen: list[dict[str, Any]] = []

    async def arrived() -> bool:
        seen.append((await client.get(path, params=params)).json())
        return bool(seen[-1]["impressions"] >= 3)

    await wait_until(arrived, timeout=5, interval=0.05, what=lambda: f"totals: {seen[-1]}")
    return seen[-1]


async def test_page_figures_equal_the_api(client: Client) -> None:
    banner = await make_banner(client)
    await traffic(client, banner["id"])
    page = (await client.get("/?range=today")).text
    await eventually_totals(client, "/api/v1/totals", page_range(page))
    r = await client.get("/?range=today")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    api = (await client.get("/api/v1/totals", params=page_range(r.text))).json()
    shown = figures(r.text)
    assert (api["total_clicks"], api["valid_clicks"]) == (4, 2)
    assert (api["bot_clicks"], api["repeat_clicks"], api["impressions"]) == (1, 1, 3)
    for key in ("total_clicks", "valid_clicks", "bot_clicks", "repeat_clicks", "impressions"):
        assert shown[key] == str(api[key]), key
    assert float(shown["ctr"]) == pytest.approx(api["ctr"])
    assert f'href="/banners/{banner["id"]}?range=today"' in r.text  # top banners link
    assert "data-cache-panel" not in r.text  # operations live on /ops now

    one = await client.get(f"/banners/{banner['id']}?range=30d")
    assert one.status_code == 200
    api_one = (
        await client.get(f"/api/v1/banners/{banner['id']}/totals", params=page_range(one.text))
    ).json()
    assert figures(one.text)["valid_clicks"] == str(api_one["valid_clicks"]) == "2"
    assert f"/c/{banner['id']}" in one.text and f"/i/{banner['id']}" in one.text


async def test_traffic_and_top_match_the_page(client: Client) -> None:
    first, second = await make_banner(client, 1), await make_banner(client, 2)
    await traffic(client, second["id"])
    page = (await client.get("/?range=7d")).text
    span = page_range(page)
    series = (await client.get("/api/v1/traffic", params={**span, "interval": "day"})).json()
    assert len(series["points"]) == 7
    assert page.count('<tr><th scope="row"><time') == 7  # the table behind the chart
    assert sum(p["valid_clicks"] for p in series["points"]) == 2
    assert sum(p["bot_clicks"] + p["repeat_clicks"] for p in series["points"]) == 2
    top = (await client.get("/api/v1/top", params={**span, "count": "valid"})).json()
    assert [t["banner"]["id"] for t in top["items"]] == [second["id"]]
    assert first["id"] not in [t["banner"]["id"] for t in top["items"]]
    one = await client.get(f"/api/v1/banners/{second['id']}/traffic", params=span)
    assert one.status_code == 200 and one.json()["interval"] == "hour"


async def test_range_api_errors(client: Client) -> None:
    span = {"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}
    assert_error(await client.get("/api/v1/totals", params=span), 400)
    assert_error(await client.get("/api/v1/totals"), 400)
    assert_error(
        await client.get(
            "/api/v1/banners/999/totals", params={**span, "from": "2026-10-01T00:00:00Z"}
        ),
        404,
    )
    long = {"from": "2000-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "interval": "minute"}
    assert_error(await client.get("/api/v1/traffic", params=long), 400)
    assert_error(await client.get("/banners/999"), 404, "not_found")


async def test_static_files_and_custom_range_notice(client: Client) -> None:
    js = await client.get("/dashboard/static/dashboard.js")
    assert js.status_code == 200 and "sessionStorage" not in js.text  # no token kept
    assert (await client.get("/dashboard/static/dashboard.css")).status_code == 200
    bad = await client.get("/?range=custom&from=2026-11-05&to=2026-11-01")
    assert bad.status_code == 200 and "The start date is after the end date." in bad.text
    hostile = await client.get("/", params={"range": "<script>alert(1)</script>"})
    assert hostile.status_code in (200, 400) and "<script>alert" not in hostile.text


@pytest.mark.parametrize("settings_overrides", [{"dashboard_token": "read-me"}])
async def test_a_read_token_guards_the_pages_only(client: Client) -> None:
    refused = await client.get("/")
    assert_error(refused, 401)
    assert refused.headers["www-authenticate"].startswith("Basic")
    assert_error(await client.get("/", headers={"Authorization": "Bearer wrong"}), 401)
    basic = base64.b64encode(b"anyone:read-me").decode()
    assert (await client.get("/", headers={"Authorization": f"Basic {basic}"})).status_code == 200
    assert (await client.get("/", headers={"Authorization": "Bearer read-me"})).status_code == 200
    # The JSON API keeps its own rules: reads stay open.
    assert (await client.get("/api/v1/cache/stats")).status_code == 200


async def test_cache_panel_fragment(client: Client) -> None:
    banner = await make_banner(client)
    for _ in range(3):
        await client.get(f"/api/v1/banners/{banner['id']}/with-stats")
    assert (await client.get("/ops/cache")).status_code == 401
    await sign_in(client)
    r = await client.get("/ops/cache")
    assert r.status_code == 200 and "data-cache-panel" in r.text
    size = (await client.get("/api/v1/cache/stats")).json()["size"]
    assert f'data-cache-size="{size}"' in r.text
    assert '<tr data-namespace="banner_stats">' in r.text


@pytest.mark.parametrize("settings_overrides", [{"cache_enabled": False}])
async def test_pages_without_a_cache(client: Client) -> None:
    banner = await make_banner(client)
    assert (await client.get("/")).status_code == 200
    await sign_in(client)
    r = await client.get("/ops")
    assert r.status_code == 200 and "The cache is switched off" in r.text
    assert (await client.get(f"/banners/{banner['id']}")).status_code == 200
