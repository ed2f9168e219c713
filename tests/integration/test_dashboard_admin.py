"""Sign-in, the banner pages, filters and the live view over HTTP (SQLite and PostgreSQL).

The session is the real one (Litestar's server-side middleware and its file store);
filtered figures are checked against clicks counted by hand, and the page against the
filtered JSON API.
"""

from __future__ import annotations

import asyncio
import html
import re
from datetime import timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.integration.test_dashboard_http import csrf_of, figures, page_range, sign_in
from tests.support.banners import make_banner
from tests.support.metrics import metric

from bannertrack.timeutil import utcnow

Client = AsyncTestClient[Litestar]
BROWSER = {"Accept": "text/html,application/xhtml+xml"}
# (ip, user agent, query): DE and US addresses, two campaigns.
CLICKS = (
    ("85.214.132.117", "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0 Safari/537.36", "a"),
    ("85.214.132.118", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Safari/604.1", "a"),
    ("85.214.132.119", "Mozilla/5.0 (Macintosh) Firefox/130.0", "b"),
    ("8.8.8.8", "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0 Safari/537.36", "a"),
)


async def click_through_links(client: Client, banner_id: int) -> None:
    for ip, ua, campaign in CLICKS:
        r = await client.post(
            f"/api/v1/banners/{banner_id}/clicks",
            json={"ip": ip, "user_agent": ua, "referrer": f"https://news.example.com/{campaign}"},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
    # The click report has no query string; utm values come from the tracking link, whose
    # test client has no address, so these clicks have no country ("(none)").
    for _ip, ua, campaign in CLICKS[:2]:
        r = await client.get(
            f"/c/{banner_id}?utm_source=newsletter&utm_campaign={campaign}",
            headers={"User-Agent": ua},
            follow_redirects=False,
        )
        assert r.status_code == 302


async def test_sign_in_csrf_and_sign_out(client: Client) -> None:
    asked = await client.get("/banners/new", headers=BROWSER, follow_redirects=False)
    assert asked.status_code == 303 and asked.headers["location"] == "/login?next=/banners/new"
    form = (await client.get("/login")).text
    wrong = await client.post("/login", data={"csrf": csrf_of(form), "token": "nope"})
    assert wrong.status_code == 401 and "That is not the admin token." in wrong.text
    # A form without its session's token is refused, even with the right admin token.
    forged = await client.post("/login", data={"token": ADMIN_TOKEN}, follow_redirects=False)
    assert forged.status_code == 403
    r = await client.post(
        "/login",
        data={"csrf": csrf_of(wrong.text), "token": ADMIN_TOKEN, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Secure" not in cookie
    assert ADMIN_TOKEN not in cookie
    csrf = csrf_of((await client.get("/banners")).text)
    data = {
        "name": "Forged",
        "image_url": "https://a.example/x.png",
        "target_url": "https://b.example/",
    }
    assert (await client.post("/banners/new", data=data)).status_code == 403
    assert (await client.post("/banners/new", data={**data, "csrf": "x" * 43})).status_code == 403
    made = await client.post("/banners/new", data={**data, "csrf": csrf}, follow_redirects=False)
    assert made.status_code == 303
    out = await client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    again = await client.post("/banners/new", data={**data, "csrf": csrf}, follow_redirects=False)
    assert again.status_code in (401, 403)
    names = [b["name"] for b in (await client.get("/api/v1/banners")).json()["items"]]
    assert names.count("Forged") == 1


async def test_secure_cookie_behind_https(client: Client) -> None:
    form = await client.get("/login", headers={"X-Forwarded-Proto": "https"})
    # From an untrusted peer the header is ignored; the test client is no trusted proxy.
    assert "Secure" not in form.headers.get("set-cookie", "")
    client.base_url = client.base_url.copy_with(scheme="https")
    form = await client.get("/login")
    assert "; Secure" in form.headers["set-cookie"]


async def test_banner_crud_from_forms(client: Client) -> None:
    csrf = await sign_in(client)
    bad = await client.post(
        "/banners/new",
        data={"csrf": csrf, "name": "", "image_url": "ftp://x", "target_url": "https://b.example/"},
    )
    assert bad.status_code == 400
    assert re.search(r'id="e-name">Expected `str` of length &gt;= 1', bad.text), bad.text
    good = {
        "csrf": csrf,
        "name": "Winter sale",
        "image_url": "ftp://cdn.example/x.png",
        "target_url": "https://shop.example/",
        "active": "on",
    }
    bad_url = await client.post("/banners/new", data=good)
    assert bad_url.status_code == 400
    assert 'id="e-image_url">image_url must be an absolute http(s) URL' in bad_url.text
    good["image_url"] = "https://cdn.example/x.png"
    made = await client.post("/banners/new", data=good, follow_redirects=False)
    assert made.status_code == 303
    listed = (await client.get("/banners", params={"q": "winter"})).text
    found = re.search(r'data-banner-row="(\d+)" data-status="active"', listed)
    assert found and "Winter sale" in listed
    banner_id = int(found.group(1))
    paused = await client.post(
        f"/banners/{banner_id}/status", data={"csrf": csrf, "active": "0"}, follow_redirects=False
    )
    assert paused.status_code == 303
    assert (await client.get(f"/api/v1/banners/{banner_id}")).json()["active"] is False
    assert (
        f'data-banner-row="{banner_id}"'
        in (await client.get("/banners", params={"status": "paused"})).text
    )
    assert (
        f'data-banner-row="{banner_id}"'
        not in (await client.get("/banners", params={"status": "active"})).text
    )
    edit = await client.get(f"/banners/{banner_id}/edit")
    assert 'value="Winter sale"' in edit.text
    saved = await client.post(
        f"/banners/{banner_id}/edit",
        data={**good, "name": "Winter sale II", "active": ""},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    body = (await client.get(f"/api/v1/banners/{banner_id}")).json()
    assert (body["name"], body["active"]) == ("Winter sale II", False)
    keep = await client.post(f"/banners/{banner_id}/delete", data={"csrf": csrf})
    assert keep.status_code == 400  # not confirmed
    gone = await client.post(
        f"/banners/{banner_id}/delete",
        data={"csrf": csrf, "confirm": "yes"},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    assert (await client.get(f"/api/v1/banners/{banner_id}")).status_code == 404


async def test_banner_list_sorts_and_pages(client: Client) -> None:
    ids = [(await make_banner(client, i))["id"] for i in range(30)]
    await click_through_links(client, ids[3])
    first = (await client.get("/banners", params={"sort": "clicks"})).text
    rows = re.findall(r'data-banner-row="(\d+)"', first)
    assert len(rows) == 25 and int(rows[0]) == ids[3]
    assert 'data-banner-total="30"' in first and "Page 1 of 2" in first
    second = re.findall(
        r'data-banner-row="(\d+)"', (await client.get("/banners?sort=clicks&page=2")).text
    )
    assert len(second) == 5 and not set(second) & set(rows)
    newest = re.findall(
        r'data-banner-row="(\d+)"', (await client.get("/banners?sort=created")).text
    )
    assert int(newest[0]) == ids[-1]


async def test_unknown_pages_answer_html_to_browsers(client: Client) -> None:
    page = await client.get("/no-such-page", headers=BROWSER)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert 'href="/"' in page.text
    banner = await client.get("/banners/987654", headers=BROWSER)
    assert banner.status_code == 404 and "banner 987654 not found" in banner.text
    api = await client.get("/api/v1/banners/987654", headers=BROWSER)
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


async def _eventually(client: Client, path: str, params: dict[str, str], valid: int) -> Any:
    for _ in range(100):
        body = (await client.get(path, params=params)).json()
        if body["valid_clicks"] + body["repeat_clicks"] >= valid:
            return body
        await asyncio.sleep(0.05)
    raise AssertionError(body)


async def test_filters_narrow_page_and_api_alike(client: Client) -> None:
    banner = await make_banner(client)
    other = await make_banner(client, 2)
    await click_through_links(client, banner["id"])
    await click_through_links(client, other["id"])
    page = (await client.get("/?range=today")).text
    span = page_range(page)
    await _eventually(client, "/api/v1/totals", span, 12)
    de = (await client.get("/api/v1/totals", params={**span, "country": "DE"})).json()
    assert de["impressions"] is None and "incomplete_before" not in de
    assert de["total_clicks"] == 6  # three reports from DE addresses per banner
    facts = {"country": "(none)", "utm_campaign": "a"}
    both = {**span, **facts}
    narrowed = (await client.get("/api/v1/totals", params=both)).json()
    assert narrowed["total_clicks"] == 4  # two link clicks per banner
    one = (await client.get(f"/api/v1/banners/{banner['id']}/totals", params=both)).json()
    assert one["total_clicks"] == 2
    filtered = (await client.get("/", params={"range": "today", **facts})).text
    shown = figures(filtered)
    for key in ("total_clicks", "valid_clicks", "bot_clicks", "repeat_clicks"):
        assert shown[key] == str(narrowed[key]), key
    assert 'data-chip="country"' in filtered
    assert "Germany" in (await client.get("/", params={"range": "today", "country": "DE"})).text
    for by in ("referrer", "utm_source", "os", "browser"):
        found = (
            await client.get(
                "/api/v1/breakdown", params={**both, "by": by, "count": "valid", "limit": "8"}
            )
        ).json()
        for item in found["items"]:
            assert f'data-item="{item["value"]}"' in filtered
    by_placement = await client.get("/api/v1/breakdown", params={**both, "by": "placement"})
    assert by_placement.status_code == 200  # link clicks have no placement: "(none)"
    assert by_placement.json()["items"] == [{"value": "(none)", "clicks": 4}]
    top = (await client.get("/api/v1/top", params={**both, "count": "valid"})).json()
    assert {t["banner"]["id"] for t in top["items"]} <= {banner["id"], other["id"]}
    # The chip's link is the same view without that filter.
    chip = re.search(r'<a class="chip" href="([^"]+)" data-chip="country"', filtered)
    assert chip and "country" not in chip.group(1) and "utm_campaign=a" in chip.group(1)
    bare = (await client.get(html.unescape(chip.group(1)))).text
    assert figures(bare)["total_clicks"] == str(
        (await client.get("/api/v1/totals", params={**span, "utm_campaign": "a"})).json()[
            "total_clicks"
        ]
    )
    # The first filtered read started the in-memory copy's load: once it answers, the
    # same figures come from it.
    for _ in range(200):
        exposition = (await client.get("/metrics")).text
        if metric(exposition, "bannertrack_filter_copy_loaded"):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the filtered figures' copy did not load")
    every = (await client.get("/api/v1/totals", params=span)).json()["total_clicks"]
    assert metric(exposition, "bannertrack_filter_copy_clicks") == every
    assert (await client.get("/api/v1/totals", params=both)).json() == narrowed
    again = (await client.get("/", params={"range": "today", **facts})).text
    assert figures(again) == shown


@pytest.mark.parametrize("settings_overrides", [{"retention_days": 1, "conversion_window_days": 1}])
async def test_a_range_before_retention_says_so(client: Client) -> None:
    end = utcnow()
    span = {"from": (end - timedelta(days=5)).isoformat(), "to": end.isoformat()}
    body = (await client.get("/api/v1/totals", params={**span, "country": "DE"})).json()
    assert body["incomplete_before"] is not None
    unfiltered = (await client.get("/api/v1/totals", params=span)).json()
    assert "incomplete_before" not in unfiltered
    page = (await client.get("/", params={"range": "7d", "country": "DE"})).text
    assert "data-incomplete-before" in page


async def test_live_view_shows_new_clicks(client: Client) -> None:
    banner = await make_banner(client)
    before = (await client.get("/live/fragment")).text
    assert 'data-live-total="0"' in before
    await click_through_links(client, banner["id"])
    for _ in range(100):
        fresh = (await client.get("/live/fragment")).text
        if "news.example.com" in fresh:
            break
        await asyncio.sleep(0.05)
    assert "news.example.com" in fresh and 'data-live-total="0"' not in fresh
    assert (await client.get("/live")).status_code == 200
