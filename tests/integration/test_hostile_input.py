"""Issue 12, items 7 and 8: every bad input is a 4xx JSON error, and a click is never
counted when its redirect cannot be sent. SQLite and PostgreSQL, the full app in-process;
the Location and the raw path are also checked through a real server (granian)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import update
from tests.conftest import ADMIN, ADMIN_TOKEN, INGEST
from tests.integration.test_api import assert_error
from tests.support.banners import make_banner
from tests.support.server import ServerProcess

from bannertrack.clicks import follow
from bannertrack.db.engine import create_engine
from bannertrack.db.tables import banners

Client = AsyncTestClient[Litestar]
DEEP = b"[" * 5000 + b"]" * 5000


async def total_clicks(client: Client, banner_id: int) -> int:
    r = await client.get(f"/api/v1/banners/{banner_id}/stats")
    assert r.status_code == 200, r.text
    return int(r.json()["total_clicks"])


async def store_target_as_is(database_url: str, client: Client, banner_id: int, url: str) -> None:
    """A row written before the URL rules: straight into the database."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(banners).where(banners.c.id == banner_id).values(target_url=url)
            )
    finally:
        await engine.dispose()
    r = await client.post(f"/api/v1/cache/banner/{banner_id}/invalidate", headers=ADMIN)
    assert r.status_code == 200, r.text


# --- item 7: target URLs -------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "https://shop.example/p\r\nSet-Cookie: a=1",
        "https://shop.example/p\nx",
        "https://shop.example/p\x00",
        "https://shop.example/p\x1b",
        "https://shop.example/p\x7f",
        "https://shop.example/p\u0085",
        "https://shop.example/p\tq",
        "https://shop.example/p q",
        "https://sh op.example/",
        "https://shop.example:99999/",
    ],
)
async def test_targets_that_cannot_be_a_location_are_refused(
    shared_client: Client, target: str
) -> None:
    body = {"name": "x", "image_url": "https://cdn.example/i.png", "target_url": target}
    assert_error(
        await shared_client.post("/api/v1/banners", json=body, headers=ADMIN), 400, "invalid_input"
    )
    b = await make_banner(shared_client)
    r = await shared_client.put(
        f"/api/v1/banners/{b['id']}", json={"target_url": target}, headers=ADMIN
    )
    assert_error(r, 400, "invalid_input")
    r = await shared_client.put(
        f"/api/v1/banners/{b['id']}", json={"image_url": target}, headers=ADMIN
    )
    assert_error(r, 400, "invalid_input")
    assert (await shared_client.get(f"/api/v1/banners/{b['id']}")).json() == b


async def test_non_ascii_targets_are_stored_as_uris_and_redirect(client: Client) -> None:
    b = await make_banner(
        client,
        target_url="https://bücher.example/straße?q=ü#oben",
        image_url="https://cdn.example/ä.png",
    )
    assert b["target_url"] == "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%BC#oben"
    assert b["image_url"] == "https://cdn.example/%C3%A4.png"
    r = await client.get(f"/c/{b['id']}?utm_source=x", follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == b["target_url"]  # a fragment: used as stored
    r = await client.put(
        f"/api/v1/banners/{b['id']}", json={"target_url": "https://例え.テスト/パス"}, headers=ADMIN
    )
    assert r.json()["target_url"] == "https://xn--r8jz45g.xn--zckzah/%E3%83%91%E3%82%B9"
    r = await client.get(f"/c/{b['id']}?utm_source=x", follow_redirects=False)
    expected = "https://xn--r8jz45g.xn--zckzah/%E3%83%91%E3%82%B9?utm_source=x"
    assert r.status_code == 302 and r.headers["location"] == expected
    assert await total_clicks(client, b["id"]) == 2


async def test_a_legacy_target_answers_json_and_counts_nothing(
    client: Client,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(follow, "_warned", set())  # once per process: this test's own
    b = (await make_banner(client))["id"]
    await store_target_as_is(database_url, client, b, "https://shop.example/\r\nSet-Cookie: a=1")
    with caplog.at_level(logging.WARNING, logger="bannertrack"):
        for _ in range(3):
            r = await client.get(f"/c/{b}", follow_redirects=False)
            assert_error(r, 409, "invalid_target")
            assert "set-cookie" not in r.headers
    assert await total_clicks(client, b) == 0
    warnings = [rec for rec in caplog.records if "cannot be a Location" in rec.getMessage()]
    assert len(warnings) == 1 and warnings[0].exc_info is None  # once, no traceback
    # A legacy target that only has non-ASCII is converted on the way out, and counted.
    await store_target_as_is(database_url, client, b, "https://bücher.example/ä")
    r = await client.get(f"/c/{b}", follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == "https://xn--bcher-kva.example/%C3%A4"
    assert await total_clicks(client, b) == 1


# --- item 8: every bad input is a 4xx JSON error --------------------------------------


async def test_deeply_nested_json_is_a_400(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    b = (await make_banner(client))["id"]
    json_headers = {"content-type": "application/json"}
    with caplog.at_level(logging.DEBUG):
        for body in (DEEP, b'{"ip": ' + DEEP + b"}", b'{"x": ' + DEEP + b"}"):
            r = await client.post(
                f"/api/v1/banners/{b}/clicks", content=body, headers={**INGEST, **json_headers}
            )
            assert_error(r, 400, "invalid_input")
            r = await client.post(
                "/api/v1/banners", content=body, headers={**ADMIN, **json_headers}
            )
            assert_error(r, 400, "invalid_input")
            r = await client.put(
                f"/api/v1/banners/{b}", content=body, headers={**ADMIN, **json_headers}
            )
            assert_error(r, 400, "invalid_input")
            # Without a token the body is never read.
            r = await client.post(f"/api/v1/banners/{b}/clicks", content=body, headers=json_headers)
            assert_error(r, 401)
    assert not [rec for rec in caplog.records if rec.exc_info], "a traceback was logged"
    assert await total_clicks(client, b) == 0


@pytest.mark.parametrize(
    "params",
    [
        {"from": "0001-01-01T00:00:00+01:00", "to": "0001-01-02T00:00:00Z"},
        {"from": "0001-01-01T00:00:00Z", "to": "0001-01-01T12:00:00Z"},
        {"from": "9999-12-31T00:00:00Z", "to": "9999-12-31T23:59:59Z"},
        {"from": "9999-12-30T00:00:00Z", "to": "9999-12-31T23:00:00-05:00"},
        {"from": "9999-12-31T23:00:00-05:00", "to": "9999-12-31T23:59:59Z"},
    ],
)
async def test_times_near_year_1_or_9999_are_a_400(
    shared_client: Client, params: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    b = (await make_banner(shared_client))["id"]
    with caplog.at_level(logging.DEBUG):
        for interval in ("minute", "hour", "day"):
            r = await shared_client.get(
                f"/api/v1/banners/{b}/clicks", params={**params, "interval": interval}
            )
            assert_error(r, 400, "invalid_input")
        r = await shared_client.get(f"/api/v1/banners/{b}/clicks.csv", params=params, headers=ADMIN)
        assert_error(r, 400, "invalid_input")
        r = await shared_client.get(
            f"/api/v1/banners/{b}/clicks.csv", params={"to": params["to"]}, headers=ADMIN
        )
        assert r.status_code in (200, 400) and r.headers["content-type"].startswith(
            ("text/csv", "application/json")
        )
        for path in (f"/api/v1/banners/{b}/breakdown", "/api/v1/breakdown"):
            for query in (params, {"to": params["to"]}, {"from": params["from"]}):
                r = await shared_client.get(path, params={"by": "country", **query})
                assert_error(r, 400, "invalid_input")
    assert not [rec for rec in caplog.records if rec.exc_info], "a traceback was logged"


async def test_the_widest_allowed_range_still_answers(client: Client) -> None:
    b = (await make_banner(client))["id"]
    for params in (
        {"from": "0001-01-02T00:00:00Z", "to": "0001-01-08T00:00:00Z", "interval": "day"},
        {"from": "9999-12-23T00:00:00Z", "to": "9999-12-30T00:00:00Z", "interval": "day"},
    ):
        r = await client.get(f"/api/v1/banners/{b}/clicks", params=params)
        assert r.status_code == 200, r.text
        assert sum(p["clicks"] for p in r.json()["points"]) == 0
    r = await client.get(
        f"/api/v1/banners/{b}/clicks.csv",
        params={"from": "0001-01-02T00:00:00Z", "to": "9999-12-30T00:00:00Z"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text


NON_CANONICAL = ["+1", "%31", "%2B1", "01", "1_0", "\u0663", "\uff11", "1%20", "%201"]
ID_ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/c/{}", {}),
    ("HEAD", "/c/{}", {}),
    ("GET", "/i/{}", {}),
    ("GET", "/api/v1/banners/{}", {}),
    ("PUT", "/api/v1/banners/{}", {"json": {"name": "x"}, "headers": ADMIN}),
    ("DELETE", "/api/v1/banners/{}", {"headers": ADMIN}),
    ("POST", "/api/v1/banners/{}/clicks", {"json": {}, "headers": INGEST}),
    ("GET", "/api/v1/banners/{}/stats", {}),
    ("GET", "/api/v1/banners/{}/with-stats", {}),
    (
        "GET",
        "/api/v1/banners/{}/clicks",
        {"params": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}},
    ),
    ("GET", "/api/v1/banners/{}/clicks.csv", {"headers": ADMIN}),
    ("GET", "/api/v1/banners/{}/breakdown", {"params": {"by": "country"}}),
    ("POST", "/api/v1/cache/banner/{}/invalidate", {"headers": ADMIN}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), ID_ROUTES)
async def test_only_canonical_ids_name_a_banner(
    client: Client, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    b = await make_banner(client)
    assert b["id"] == 1 and (await make_banner(client, 10))["id"] == 2
    for spelling in NON_CANONICAL:
        r = await client.request(method, path.format(spelling), follow_redirects=False, **kwargs)
        assert r.status_code == 404, (spelling, r.text)
        if method != "HEAD":
            assert_error(r, 404, "not_found")
    for spelling in ("abc", "1.0", "1e0", "-1"):  # no integer at all: the same answer
        r = await client.request(method, path.format(spelling), follow_redirects=False, **kwargs)
        assert r.status_code == 404, (spelling, r.text)
    assert await total_clicks(client, 1) == 0
    assert (await client.get("/api/v1/banners/1")).json()["name"] == "banner 1"  # not deleted
    # The canonical spelling still works.
    r = await client.request(method, path.format("1"), follow_redirects=False, **kwargs)
    assert r.status_code < 400, r.text


# --- the same over a real server --------------------------------------------------------


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {"BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN, "BANNERTRACK_LOG_LEVEL": "WARNING"}
    with ServerProcess(f"sqlite:///{tmp_path / 'h.db'}", tmp_path / "server.log", env=env) as srv:
        yield srv


@pytest.mark.slow
@pytest.mark.e2e
def test_over_a_real_server(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        body = {"name": "iri", "image_url": "https://cdn.example/i.png"}
        r = http.post(
            "/api/v1/banners",
            json={**body, "target_url": "https://bücher.example/ä"},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        b = r.json()["id"]
        r = http.get(f"/c/{b}?utm_source=x", follow_redirects=False)
        assert r.status_code == 302
        assert r.headers["location"] == "https://xn--bcher-kva.example/%C3%A4?utm_source=x"
        bad = {**body, "target_url": "https://shop.example/\r\nSet-Cookie: a=1"}
        assert http.post("/api/v1/banners", json=bad, headers=ADMIN).status_code == 400
        for spelling in ("+1", "%31", "01", "%D9%A3"):  # %D9%A3 is the Arabic-Indic three
            r = http.get(f"/c/{spelling}", follow_redirects=False)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", spelling
        r = http.post(
            "/api/v1/banners", content=DEEP, headers={**ADMIN, "content-type": "application/json"}
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
        r = http.get(
            f"/api/v1/banners/{b}/clicks",
            params={"from": "9999-12-31T00:00:00Z", "to": "9999-12-31T23:59:59Z"},
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
        assert http.get(f"/api/v1/banners/{b}/stats").json()["total_clicks"] == 1
    log = server.log_path.read_text()
    assert "Traceback" not in log and "RecursionError" not in log and "OverflowError" not in log
