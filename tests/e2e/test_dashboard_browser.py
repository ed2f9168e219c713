"""The dashboard in a real headless Chromium against a real server process.

Data is recorded the way sites record it (the tracking link, the pixel, the click API);
then the browser checks what a marketer sees: no console errors, the figures equal the
API's for the range the page states, a range change redraws the chart, and the cache
buttons act with the admin token and are refused without it. Debian's ``chromium`` is
required: without it these tests fail and say how to install it, they never skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.support import browser as browser_support
from tests.support.banners import make_banner_sync
from tests.support.browser import ChromiumMissingError, chromium
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until_sync

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
FIGURES = ("total_clicks", "valid_clicks", "bot_clicks", "repeat_clicks", "impressions")


def record_traffic(url: str) -> list[int]:
    """Two banners; clicks through the tracking link (valid, repeat, bot) and impressions."""
    with httpx.Client(base_url=url, timeout=10) as http:
        ids = []
        for i in (1, 2):
            ids.append(make_banner_sync(http, i, name=f"Spring sale {i}")["id"])
        first, second = ids
        for n, ua in enumerate([CHROME, f"{CHROME} b", f"{CHROME} c", CHROME, GOOGLEBOT]):
            referrer = {"Referer": "https://news.example.com/spring"} if n < 2 else {}
            r = http.get(
                f"/c/{first}?utm_source=news&utm_campaign=spring",
                headers={"User-Agent": ua, **referrer},
            )
            assert r.status_code == 302, (n, r.text)
        r = http.post(
            f"/api/v1/banners/{second}/clicks", json={"user_agent": CHROME}, headers=ADMIN
        )
        assert r.status_code == 201, r.text
        for _ in range(40):
            assert http.get(f"/i/{first}").status_code == 200
        wait_until_sync(
            lambda: http.get(f"/api/v1/banners/{first}/stats").json()["impressions"] >= 40,
            interval=0.1,
            what="impressions were not written",
        )
        http.get(f"/api/v1/banners/{first}/with-stats")  # something in the cache
    return ids


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("dashboard-browser")
    with ServerProcess(
        f"sqlite:///{root / 'bannertrack.db'}",
        root / "server.log",
        env={"BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN},
    ) as srv:
        srv.banner_ids = record_traffic(srv.url)  # type: ignore[attr-defined]
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


class Console:
    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _on_console(self, msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning"):
            self.errors.append(f"{msg.type}: {msg.text}")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


def api(server: ServerProcess, path: str, **params: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}{path}", params=params, timeout=10)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def shown_range(page: Page) -> dict[str, str]:
    period = page.locator("[data-period]")
    return {
        "from": period.get_attribute("data-from") or "",
        "to": period.get_attribute("data-to") or "",
    }


def test_overview_loads_clean_and_equals_the_api(
    server: ServerProcess, page: Page, tmp_path: Path
) -> None:
    console = Console(page)
    page.goto(f"{server.url}/?range=today")
    page.wait_for_load_state("networkidle")
    assert console.errors == []
    totals = api(server, "/api/v1/totals", **shown_range(page))
    assert (totals["total_clicks"], totals["valid_clicks"], totals["bot_clicks"]) == (6, 4, 1)
    assert (totals["repeat_clicks"], totals["impressions"]) == (1, 40)
    for key in FIGURES:
        card = page.locator(f'[data-figure="{key}"]')
        assert card.get_attribute("data-value") == str(totals[key])
        expect(card.locator(".figure-value")).to_have_text(f"{totals[key]:,}")
    expect(page.locator('[data-figure="ctr"] .figure-value')).to_have_text(
        f"{totals['ctr'] * 100:.2f} %"
    )
    top = api(server, "/api/v1/top", **shown_range(page), count="valid")
    rows = page.locator("[data-top] tbody tr")
    expect(rows).to_have_count(len(top["items"]))
    expect(rows.first.locator("a.value")).to_have_text(top["items"][0]["banner"]["name"])
    for by in ("referrer", "utm_campaign", "country", "device", "browser"):
        found = api(
            server, "/api/v1/breakdown", **shown_range(page), by=by, count="valid", limit="8"
        )
        rows = page.locator(f'[data-breakdown="{by}"] tbody tr[data-item]')
        expect(rows).to_have_count(len(found["items"]) + (1 if found["other"] else 0))
        for i, item in enumerate(found["items"]):
            assert rows.nth(i).get_attribute("data-item") == item["value"]
            expect(rows.nth(i).locator("td")).to_have_text(f"{item['clicks']:,}")
    referrers = api(server, "/api/v1/breakdown", **shown_range(page), by="referrer", count="valid")
    assert {"value": "news.example.com", "clicks": 2} in referrers["items"]
    shot = tmp_path / "overview.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


def test_a_range_change_redraws_the_chart(server: ServerProcess, page: Page) -> None:
    console = Console(page)
    page.goto(f"{server.url}/?range=today")
    today_bars = int(page.locator("[data-chart]").get_attribute("data-points") or 0)
    assert today_bars == int(shown_range(page)["to"][11:13]) + 1  # one bar per hour so far
    expect(page.locator("[data-custom-dates]")).to_be_hidden()  # the script hides them
    with page.expect_navigation():
        page.select_option("[data-range-select]", "7d")  # submits by itself
    assert "range=7d" in page.url
    expect(page.locator("[data-chart]")).to_have_attribute("data-points", "7")
    expect(page.locator("[data-chart-table] tbody tr")).to_have_count(7)
    series = api(server, "/api/v1/traffic", **shown_range(page), interval="day")
    last = series["points"][-1]
    cells = page.locator("[data-chart-table] tbody tr").last.locator("td")
    expect(cells.nth(0)).to_have_text(str(last["valid_clicks"]))
    expect(cells.nth(1)).to_have_text(str(last["bot_clicks"]))
    # Custom dates: picked in the form, the chart shows one bar per day.
    page.select_option("[data-range-select]", "custom")
    expect(page.locator("[data-custom-dates]")).to_be_visible()
    page.fill("#range-from", "2026-11-01")
    page.fill("#range-to", "2026-11-10")
    with page.expect_navigation():
        page.click("form[data-range-form] button[type=submit]")
    expect(page.locator("[data-chart]")).to_have_attribute("data-points", "10")
    assert console.errors == []


def sign_in(page: Page, url: str, then: str = "/") -> None:
    page.goto(f"{url}/login?next={then}")
    page.fill("#token", ADMIN_TOKEN)
    with page.expect_navigation():
        page.click("form[data-login-form] button[type=submit]")


def test_cache_actions_need_the_admin_session(server: ServerProcess, page: Page) -> None:
    httpx.get(f"{server.url}/api/v1/banners/top?limit=5", timeout=10)
    page.goto(f"{server.url}/ops")
    assert "/login?next=/ops" in page.url  # no session: the sign-in, then back
    page.fill("#token", "wrong")
    page.click("form[data-login-form] button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("That is not the admin token.")
    size_before = api(server, "/api/v1/cache/stats")["size"]
    assert size_before > 0
    page.fill("#token", ADMIN_TOKEN)
    with page.expect_navigation():
        page.click("form[data-login-form] button[type=submit]")
    assert page.url.endswith("/ops")
    page.click('[data-cache-action="clear"]')
    expect(page.locator("[data-done]")).to_contain_text("Cleared")
    after = api(server, "/api/v1/cache/stats")
    for ns in ("banner", "click_stats", "banner_stats", "top_banners"):
        assert after["namespaces"][ns]["size"] == 0, ns
    page.click('[data-cache-action="warm"]')
    expect(page.locator("[data-done]")).to_contain_text("Warmed")
    page.select_option("[data-namespace-select]", "top_banners")
    page.click('[data-cache-action="namespace"]')
    expect(page.locator("[data-done]")).to_contain_text("Invalidated top_banners")
    page.fill("[data-banner-input]", "1")
    page.click('[data-cache-action="banner"]')
    expect(page.locator("[data-done]")).to_contain_text("Invalidated banner 1")
    # No token in the page's storage: the session cookie is HttpOnly, out of scripts' reach.
    assert page.evaluate("JSON.stringify(sessionStorage) + JSON.stringify(localStorage)") == "{}{}"
    assert "bt_session" not in page.evaluate("document.cookie")


def test_banner_page_on_a_phone_is_readable_and_keyboard_reachable(
    server: ServerProcess, browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 812}, is_mobile=True)
    page = context.new_page()
    console = Console(page)
    first = server.banner_ids[0]  # type: ignore[attr-defined]
    page.goto(f"{server.url}/banners/{first}?range=today")
    assert console.errors == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    totals = api(server, f"/api/v1/banners/{first}/totals", **shown_range(page))
    for key in FIGURES:
        card = page.locator(f'[data-figure="{key}"]')
        assert card.get_attribute("data-value") == str(totals[key])
    expect(page.locator("#snip-link")).to_have_value(f"{server.url}/c/{first}")
    expect(page.locator(".chart-compact")).to_be_visible()
    expect(page.locator(".chart-wide")).to_be_hidden()
    reached = set()
    for _ in range(20):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
    assert {"range-select", "snip-link", "SUMMARY"} <= reached
    page.screenshot(path=str(tmp_path / "banner-375.png"), full_page=True)
    page.goto(f"{server.url}/?range=7d")  # the overview, with its wide tables, fits too
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    for path in ("/banners", "/live"):  # their tables scroll inside their cards
        page.goto(f"{server.url}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
    page.goto(f"{server.url}/?range=7d")
    expect(page.locator('[data-figure="valid_clicks"] .figure-value')).to_be_in_viewport()
    assert console.errors == []
    context.close()


def test_without_chromium_the_test_fails_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(browser_support, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(ChromiumMissingError, match="apt-get install -y chromium"), chromium():
        pass
