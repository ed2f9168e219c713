"""Server-to-server click reports: who may send them, and whose facts they carry.

Issue 12, items 4 and 5: a report is honoured only from a caller holding the ingest (or
admin) token, and it carries only the facts the caller states about its end user, never
the caller's own address or agent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.conftest import ADMIN, ADMIN_TOKEN, INGEST, INGEST_TOKEN
from tests.integration.test_api import assert_error
from tests.support.banners import make_banner, make_banner_sync
from tests.support.server import ServerProcess

Client = AsyncTestClient[Litestar]
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


async def totals(client: Client, banner_id: int) -> tuple[int, int]:
    s = (await client.get(f"/api/v1/banners/{banner_id}/stats")).json()
    return s["total_clicks"], s["valid_clicks"]


async def test_reports_without_a_token_are_refused_and_count_nothing(client: Client) -> None:
    b = (await make_banner(client))["id"]
    url = f"/api/v1/banners/{b}/clicks"
    # The forgery: made-up addresses, each a valid click on today's code.
    for i in range(20):
        r = await client.post(url, json={"ip": f"198.51.100.{i}", "user_agent": CHROME})
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
    assert_error(await client.post(url), 401, "unauthorized")  # no body either
    wrong = {"Authorization": "Bearer nope"}
    assert_error(await client.post(url, json={}, headers=wrong), 401, "unauthorized")
    basic = {"Authorization": f"Basic {INGEST_TOKEN}"}
    assert_error(await client.post(url, json={}, headers=basic), 401, "unauthorized")
    assert await totals(client, b) == (0, 0)


async def test_ingest_and_admin_tokens_may_report(client: Client) -> None:
    b = (await make_banner(client))["id"]
    url = f"/api/v1/banners/{b}/clicks"
    for headers in (INGEST, ADMIN):
        r = await client.post(
            url, json={"ip": "203.0.113.9", "user_agent": CHROME}, headers=headers
        )
        assert r.status_code == 201, r.text
    assert await totals(client, b) == (2, 1)  # the second is the same visitor: a repeat
    # The ingest token reports clicks and does nothing else.
    r = await client.put(f"/api/v1/banners/{b}", json={"name": "x"}, headers=INGEST)
    assert_error(r, 401, "unauthorized")
    assert_error(await client.post("/api/v1/cache/clear", headers=INGEST), 401)
    assert_error(await client.get(f"/api/v1/banners/{b}/clicks.csv", headers=INGEST), 401)


@pytest.mark.parametrize("settings_overrides", [{"admin_token": "", "ingest_token": ""}])
async def test_reports_are_refused_when_no_token_is_configured(client: Client) -> None:
    r = await client.post("/api/v1/banners/1/clicks", json={}, headers={"Authorization": "Bearer "})
    assert_error(r, 403, "forbidden")


@pytest.mark.parametrize("settings_overrides", [{"admin_token": ""}])
async def test_the_ingest_token_alone_is_enough(client: Client) -> None:
    r = await client.post("/api/v1/banners/4242/clicks", json={}, headers=INGEST)
    assert_error(r, 404, "not_found")  # past the guard: the banner does not exist


@pytest.mark.parametrize(
    "ip",
    [
        "203.0.113.9x",
        "203.0.113.9:8080",
        "[2001:db8::1]",
        "999.1.2.3",
        "",
        "localhost",
        "\u0663.\u0663.\u0663.\u0663",
    ],
)
async def test_a_malformed_ip_is_refused_not_dropped(shared_client: Client, ip: str) -> None:
    b = (await make_banner(shared_client))["id"]
    r = await shared_client.post(f"/api/v1/banners/{b}/clicks", json={"ip": ip}, headers=INGEST)
    assert_error(r, 400, "invalid_input")
    assert await totals(shared_client, b) == (0, 0)


async def test_report_fields_are_the_end_users(client: Client) -> None:
    b = (await make_banner(client))["id"]
    url = f"/api/v1/banners/{b}/clicks"

    async def report(body: dict[str, Any]) -> dict[str, Any]:
        r = await client.post(url, json=body, headers=INGEST)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    # An empty user agent is a reported fact (the visitor sent none): flagged as a browser
    # without one would be. An absent one is unreported: not flagged.
    empty = await report({"ip": "198.51.100.1", "user_agent": ""})
    assert (empty["bot"], empty["bot_reason"]) == (True, "no_user_agent")
    unreported = await report({"ip": "198.51.100.2"})
    assert (unreported["bot"], unreported["repeat"]) == (False, False)
    again = await report({"ip": "198.51.100.2", "user_agent": None})
    assert (again["bot"], again["repeat"]) == (False, True)  # same address, no agent: same key
    r = await client.post(url, json={"ip": "198.51.100.3", "extra": 1}, headers=INGEST)
    assert_error(r, 400, "invalid_input")


# --- against a real server: the caller's own address and agent ------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN,
        "BANNERTRACK_INGEST_TOKEN": INGEST_TOKEN,
        "BANNERTRACK_LOG_LEVEL": "WARNING",
    }
    with ServerProcess(f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "server.log", env=env) as srv:
        yield srv


@pytest.mark.slow
@pytest.mark.e2e
def test_reports_never_take_the_calling_servers_address_or_agent(server: ServerProcess) -> None:
    """Item 5: an integration that omits ip/user_agent gets neither repeats nor bot flags.

    On the old code every report below took the caller's 127.0.0.1 and its agent, so the
    browser-agent ones were repeats of each other and the python-requests ones crawlers.
    """
    with httpx.Client(base_url=server.url, timeout=10) as http:
        b = make_banner_sync(http, name="s2s")["id"]
        callers = [
            {"User-Agent": "python-requests/2.32.3"},
            {"User-Agent": CHROME, "Referer": "https://caller.example/"},
            {"User-Agent": CHROME},
        ]
        for caller in callers:
            for body in (None, {}, {"referrer": "https://news.example/"}):
                r = http.post(
                    f"/api/v1/banners/{b}/clicks", json=body, headers={**INGEST, **caller}
                )
                assert r.status_code == 201, r.text
                assert (r.json()["bot"], r.json()["repeat"]) == (False, False), (caller, body)
        stats = http.get(f"/api/v1/banners/{b}/stats").json()
        assert (stats["total_clicks"], stats["valid_clicks"]) == (9, 9)
        rows = list(csv.DictReader(io.StringIO(http.get(
            f"/api/v1/banners/{b}/clicks.csv", headers=ADMIN
        ).text)))  # fmt: skip
    assert len(rows) == 9
    assert {r["visitor"] for r in rows} == {""}  # no address: no visitor key
    assert {r["user_agent"] for r in rows} == {""}  # never the caller's agent
    assert {r["referrer"] for r in rows} == {"", "https://news.example/"}  # nor its Referer
