"""A marketer's session in a real Chromium against a real server process.

Sign in, create a banner from the form, find it in the list, pause it, edit it; filter the
overview by a country and then a campaign from the lists and check that every card, the
chart's table and every list equal the filtered JSON API; remove a chip; watch a click
arrive in the live view; sign out and see the forms refused; a forged form without the
CSRF token is refused. Every page is checked with axe-core (no serious or critical
violation), and the banner form is filled and sent with the keyboard alone.

A placement is made with the keyboard alone, two banners linked with weights, and the
shares and snippets checked; /ops shows the outage spool's state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.support.browser import chromium
from tests.support.server import ServerProcess

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
# Addresses iptocc places in Germany and the United States.
DE, US = "85.214.132.117", "8.8.8.8"
FIGURES = ("total_clicks", "valid_clicks", "bot_clicks", "repeat_clicks")
LISTS = (
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "device",
    "browser",
    "os",
)


def _click(http: httpx.Client, banner_id: int, ip: str, ua: str, query: str) -> None:
    r = http.get(
        f"/c/{banner_id}?{query}",
        headers={"User-Agent": ua, "X-Forwarded-For": ip, "Referer": "https://news.example.com/"},
    )
    assert r.status_code == 302, r.text


def record(url: str) -> list[int]:
    with httpx.Client(base_url=url, timeout=10) as http:
        ids = []
        for i in (1, 2):
            r = http.post(
                "/api/v1/banners",
                headers=ADMIN,
                json={
                    "name": f"Autumn {i}",
                    "image_url": f"https://cdn.example.com/{i}.png",
                    "target_url": f"https://shop.example.com/{i}",
                },
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        for n in range(12):
            ip = DE if n % 3 else US
            campaign = "spring" if n % 2 else "winter"
            _click(
                http,
                ids[n % 2],
                ip,
                f"{CHROME} {n}",
                f"utm_source=newsletter&utm_medium=email&utm_campaign={campaign}",
            )
        deadline = time.monotonic() + 10
        while http.get("/api/v1/banners/top?limit=5").json()["items"][0]["clicks"] < 6:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    return ids


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("dashboard-workflow")
    with ServerProcess(
        f"sqlite:///{root / 'bannertrack.db'}",
        root / "server.log",
        env={
            "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN,
            "BANNERTRACK_TRUSTED_PROXIES": "127.0.0.1",
            "BANNERTRACK_SESSION_DIR": str(root / "sessions"),
        },
    ) as srv:
        srv.banner_ids = record(srv.url)  # type: ignore[attr-defined]
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


AXE = Axe()


def assert_accessible(page: Page) -> None:
    found = AXE.run(page).response["violations"]
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in found
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{page.url}: {bad}"


def api(server: ServerProcess, path: str, params: dict[str, str]) -> dict[str, Any]:
    r = httpx.get(f"{server.url}{path}", params=params, timeout=10)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def sign_in(page: Page, url: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#token", ADMIN_TOKEN)
    with page.expect_navigation():
        page.click("form[data-login-form] button[type=submit]")


def check_page_equals_api(page: Page, server: ServerProcess, filters: dict[str, str]) -> None:
    period = page.locator("[data-period]")
    span = {
        "from": period.get_attribute("data-from") or "",
        "to": period.get_attribute("data-to") or "",
    }
    params = {**span, **filters}
    totals = api(server, "/api/v1/totals", params)
    for key in FIGURES:
        assert page.locator(f'[data-figure="{key}"]').get_attribute("data-value") == str(
            totals[key]
        ), key
    series = api(server, "/api/v1/traffic", {**params, "interval": "hour"})
    rows = page.locator("[data-chart-table] tbody tr")
    expect(rows).to_have_count(len(series["points"]))
    for i, point in enumerate(series["points"]):
        cells = rows.nth(i).locator("td")
        assert cells.nth(0).text_content() == f"{point['valid_clicks']:,}"
        assert cells.nth(1).text_content() == f"{point['bot_clicks']:,}"
    top = api(server, "/api/v1/top", {**params, "count": "valid"})
    top_rows = page.locator("[data-top] tbody tr")
    expect(top_rows).to_have_count(len(top["items"]))
    for i, item in enumerate(top["items"]):
        assert top_rows.nth(i).get_attribute("data-item") == str(item["banner"]["id"])
        assert top_rows.nth(i).locator("td").text_content() == f"{item['clicks']:,}"
    for by in LISTS:
        found = api(
            server, "/api/v1/breakdown", {**params, "by": by, "count": "valid", "limit": "8"}
        )
        items = page.locator(f'[data-breakdown="{by}"] tbody tr[data-item]')
        expect(items).to_have_count(len(found["items"]) + (1 if found["other"] else 0))
        for i, item in enumerate(found["items"]):
            assert items.nth(i).get_attribute("data-item") == item["value"]
            assert items.nth(i).locator("td").text_content() == f"{item['clicks']:,}"


def test_a_marketers_session(server: ServerProcess, page: Page) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(page, server.url)
    assert_accessible(page)
    # Create a banner from the form.
    page.goto(f"{server.url}/banners/new")
    assert_accessible(page)
    page.fill("#f-name", "Harvest festival")
    page.fill("#f-image_url", "https://cdn.example.com/harvest.png")
    page.fill("#f-target_url", "https://shop.example.com/harvest")
    page.check("#f-active")
    with page.expect_navigation():
        page.click("[data-save]")
    expect(page.locator("[data-done]")).to_contain_text("Created banner")
    # Find it in the list, pause it, edit it.
    page.fill("#q", "harvest")
    with page.expect_navigation():
        page.click("form[data-banner-search] button[type=submit]")
    row = page.locator("tr[data-banner-row]")
    expect(row).to_have_count(1)
    banner_id = row.get_attribute("data-banner-row")
    assert_accessible(page)
    with page.expect_navigation():
        row.locator("[data-toggle]").click()
    expect(page.locator(f'tr[data-banner-row="{banner_id}"]')).to_have_attribute(
        "data-status", "paused"
    )
    page.click(f'tr[data-banner-row="{banner_id}"] a:has-text("Edit")')
    page.fill("#f-name", "Harvest festival 2026")
    with page.expect_navigation():
        page.click("[data-save]")
    body = httpx.get(f"{server.url}/api/v1/banners/{banner_id}", timeout=10).json()
    assert (body["name"], body["active"]) == ("Harvest festival 2026", False)
    # Filter: a country, then a campaign, each from the lists.
    page.goto(f"{server.url}/?range=today")
    assert_accessible(page)
    check_page_equals_api(page, server, {})
    with page.expect_navigation():
        page.click('[data-breakdown="country"] tr[data-item="DE"] a')
    expect(page.locator('[data-chip="country"]')).to_contain_text("Germany")
    check_page_equals_api(page, server, {"country": "DE"})
    with page.expect_navigation():
        page.click('[data-breakdown="utm_campaign"] tr[data-item="spring"] a')
    assert "country=DE" in page.url and "utm_campaign=spring" in page.url
    assert_accessible(page)
    check_page_equals_api(page, server, {"country": "DE", "utm_campaign": "spring"})
    with page.expect_navigation():
        page.click('[data-chip="country"]')
    expect(page.locator("[data-chip]")).to_have_count(1)
    check_page_equals_api(page, server, {"utm_campaign": "spring"})
    # The banner page, the live view, operations, a 404: accessible too.
    page.goto(f"{server.url}/banners/{server.banner_ids[0]}?range=today")  # type: ignore[attr-defined]
    assert_accessible(page)
    page.goto(f"{server.url}/ops")
    assert_accessible(page)
    page.goto(f"{server.url}/no-such-page")
    expect(page.locator("[data-error]")).to_have_attribute("data-error", "404")
    assert_accessible(page)
    page.goto(f"{server.url}/live")
    assert_accessible(page)
    before = int(page.locator("[data-live]").get_attribute("data-live-total") or 0)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        _click(http, server.banner_ids[1], US, f"{CHROME} live", "utm_source=live")  # type: ignore[attr-defined]
    expect(page.locator("[data-live]")).to_have_attribute(
        "data-live-total", str(before + 1), timeout=5000
    )
    # Sign out: the forms are refused; a forged form without a token is refused too.
    csrf = page.locator('form[data-logout] input[name="csrf"]').input_value()
    with page.expect_navigation():
        page.click("form[data-logout] button")
    form = {
        "csrf": csrf,
        "name": "x",
        "image_url": "https://a.example/x.png",
        "target_url": "https://b.example/",
    }
    refused = page.request.post(f"{server.url}/banners/new", form=form, max_redirects=0)
    assert refused.status in (401, 403, 303)
    assert refused.status != 303 or "/login" in refused.headers["location"]
    sign_in(page, server.url)
    forged = page.request.post(
        f"{server.url}/banners/new", form={k: v for k, v in form.items() if k != "csrf"}
    )
    assert forged.status == 403
    names = [
        b["name"] for b in httpx.get(f"{server.url}/api/v1/banners", timeout=10).json()["items"]
    ]
    assert "x" not in names
    assert errors == []


def test_the_banner_form_by_keyboard_alone(server: ServerProcess, page: Page) -> None:
    sign_in(page, server.url)
    page.goto(f"{server.url}/banners/new")
    page.locator("body").focus()
    typed = {
        "f-name": "Keyboard sale",
        "f-image_url": "https://cdn.example.com/kb.png",
        "f-target_url": "https://shop.example.com/kb",
    }
    seen = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id")
        seen.append(focused)
        if focused in typed:
            page.keyboard.type(typed.pop(focused))
        if focused == "f-active":
            page.keyboard.press("Space")  # untick: the banner starts paused
        if not typed and page.evaluate("document.activeElement.hasAttribute('data-save')"):
            break
    assert typed == {}, f"not reached by Tab: {typed} (focus went {seen})"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("[data-done]")).to_contain_text("Keyboard sale")
    items = httpx.get(f"{server.url}/api/v1/banners?limit=100", timeout=10).json()["items"]
    made = next(b for b in items if b["name"] == "Keyboard sale")
    assert made["active"] is False
    # A refused form puts the focus story right: the message is tied to its field.
    page.goto(f"{server.url}/banners/new")
    page.fill("#f-name", "Bad image")
    page.fill("#f-image_url", "ftp://nope")
    page.fill("#f-target_url", "https://shop.example.com/")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("#e-image_url")).to_contain_text("absolute http(s) URL")
    assert "e-image_url" in (page.locator("#f-image_url").get_attribute("aria-describedby") or "")
    assert_accessible(page)


def test_a_placement_with_weighted_banners(server: ServerProcess, page: Page) -> None:
    first, second = server.banner_ids  # type: ignore[attr-defined]
    sign_in(page, server.url)
    page.goto(f"{server.url}/placements")
    assert_accessible(page)
    with page.expect_navigation():
        page.click("text=New placement")
    assert_accessible(page)
    # The form by keyboard alone: Tab to each field, type, Enter sends it.
    page.locator("body").focus()
    typed = {"f-name": "Sidebar", "f-width": "300", "f-height": "250"}
    for _ in range(30):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id")
        if focused in typed:
            page.keyboard.type(typed.pop(focused))
        if not typed:
            break
    assert typed == {}, f"not reached by Tab: {typed}"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("[data-done]")).to_contain_text("Created placement")
    placement_id = page.url.split("?")[0].rsplit("/", 1)[1]
    for banner, weight in ((first, "300"), (second, "100")):
        page.select_option("#f-add_banner", str(banner))
        page.fill("#f-add_weight", weight)
        with page.expect_navigation():
            page.click("[data-save-weights]")
    rows = page.locator("tr[data-link]")
    expect(rows).to_have_count(2)
    shown = {
        rows.nth(i).get_attribute("data-link"): rows.nth(i)
        .locator("[data-share-text]")
        .inner_text()
        for i in range(2)
    }
    assert shown == {str(first): "75.0 %", str(second): "25.0 %"}
    serve = f"{server.url}/p/{placement_id}"
    iframe = page.locator('[data-snippet="iframe"]').input_value()
    assert iframe.startswith(f'<iframe src="{serve}" width="300" height="250" title="Sidebar"')
    assert page.locator('[data-snippet="json"]').input_value() == f"{serve}?format=json"
    assert f'fetch("{serve}?format=json")' in page.locator('[data-snippet="fetch"]').input_value()
    assert_accessible(page)
    served = httpx.get(f"{serve}?format=json", timeout=10)
    assert served.status_code == 200 and served.json()["banner_id"] in (first, second)
    # Operations: the spool's state (on SQLite there is none, and the page says why).
    page.goto(f"{server.url}/ops")
    expect(page.locator("[data-spool-off]")).to_contain_text("On SQLite there is no spool")
