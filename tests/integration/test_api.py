"""The HTTP API over SQLite and PostgreSQL, as a client sees it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.conftest import ADMIN, INGEST
from tests.support.banners import make_banner

Client = AsyncTestClient[Litestar]


def assert_error(r: Any, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code


async def test_banner_lifecycle(client: Client) -> None:
    b = await make_banner(client)
    assert set(b) == {
        "id",
        "name",
        "image_url",
        "target_url",
        "active",
        "forward_query",
        "created_at",
        "updated_at",
        # when and to whom placements serve it (no limit by default)
        "starts_at",
        "ends_at",
        "countries",
        "devices",
        "cap_per_day",
        # the query parameter its link adds a click id under (none by default)
        "click_id_param",
    }
    assert b["click_id_param"] is None
    assert (b["starts_at"], b["ends_at"], b["countries"], b["devices"], b["cap_per_day"]) == (
        None,
        None,
        [],
        [],
        None,
    )
    r = await client.get(f"/api/v1/banners/{b['id']}")
    assert r.status_code == 200 and r.json() == b
    r = await client.put(f"/api/v1/banners/{b['id']}", json={"name": "new"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["name"] == "new"
    assert r.json()["target_url"] == b["target_url"]
    r = await client.get("/api/v1/banners", params={"limit": 10})
    assert r.json()["total"] == 1 and r.json()["items"][0]["name"] == "new"
    r = await client.delete(f"/api/v1/banners/{b['id']}", headers=ADMIN)
    assert r.status_code == 204
    assert_error(await client.get(f"/api/v1/banners/{b['id']}"), 404, "not_found")


async def test_clicks_through_tracking_link_are_counted(client: Client) -> None:
    a = await make_banner(client, 1)
    b = await make_banner(client, 2)
    clicks = {a["id"]: 7, b["id"]: 3}
    for banner_id, n in clicks.items():
        for _ in range(n):
            r = await client.get(f"/c/{banner_id}", follow_redirects=False)
            assert r.status_code == 302
    r = await client.post(
        f"/api/v1/banners/{b['id']}/clicks", json={"ip": "203.0.113.9"}, headers=INGEST
    )
    assert r.status_code == 201 and r.json()["banner_id"] == b["id"]
    clicks[b["id"]] += 1

    for banner_id, n in clicks.items():
        stats = (await client.get(f"/api/v1/banners/{banner_id}/stats")).json()
        assert stats["banner_id"] == banner_id
        assert stats["total_clicks"] == stats["clicks_last_hour"] == stats["clicks_last_24h"] == n
        assert stats["first_click_at"] <= stats["last_click_at"]
        ws = (await client.get(f"/api/v1/banners/{banner_id}/with-stats")).json()
        assert ws["stats"] == stats and ws["banner"]["id"] == banner_id

    top = (await client.get("/api/v1/banners/top", params={"limit": 2})).json()
    assert top["limit"] == 2
    assert [(i["banner"]["id"], i["clicks"]) for i in top["items"]] == [
        (a["id"], 7),
        (b["id"], 4),
    ]

    now = datetime.now(UTC)
    r = await client.get(
        f"/api/v1/banners/{a['id']}/clicks",
        params={
            "from": (now - timedelta(minutes=5)).isoformat(),
            "to": (now + timedelta(minutes=1)).isoformat(),
            "interval": "minute",
        },
    )
    series = r.json()
    assert r.status_code == 200 and series["interval"] == "minute"
    assert set(series) == {"banner_id", "from", "to", "interval", "points"}
    assert len(series["points"]) == 7
    assert sum(p["clicks"] for p in series["points"]) == 7


async def test_tracking_link_redirect_rules(client: Client) -> None:
    plain = await make_banner(client, 1, target_url="https://shop.example.com/p?utm_source=ours")
    closed = await make_banner(client, 2, forward_query=False)
    r = await client.get(
        f"/c/{plain['id']}?utm_source=theirs&utm_medium=mail", follow_redirects=False
    )
    assert r.status_code == 302
    assert r.headers["location"] == "https://shop.example.com/p?utm_source=ours&utm_medium=mail"
    assert r.headers["cache-control"] == "private, no-store"
    r = await client.get(f"/c/{closed['id']}?utm_source=x", follow_redirects=False)
    assert r.headers["location"] == closed["target_url"]
    # An open-redirect attempt changes nothing: the Location is always the stored target,
    # exactly when the banner forwards no query, and with the query only appended (its
    # scheme, host and path untouched) when it does.
    r = await client.get(f"/c/{closed['id']}?url=https://evil.example", follow_redirects=False)
    assert r.headers["location"] == closed["target_url"]
    for attempt in ("url=https://evil.example", "next=//evil.example/", "u=%0d%0aLocation:x"):
        r = await client.get(f"/c/{plain['id']}?{attempt}", follow_redirects=False)
        location = urlsplit(r.headers["location"])
        assert (location.scheme, location.netloc, location.path) == (
            "https",
            "shop.example.com",
            "/p",
        )
        assert location.query.startswith("utm_source=ours&") and "\r" not in r.headers["location"]
    assert_error(await client.get("/c/987654", follow_redirects=False), 404, "not_found")


async def test_head_and_prefetch_are_answered_but_not_counted(client: Client) -> None:
    b = await make_banner(client)
    r = await client.head(f"/c/{b['id']}", follow_redirects=False)
    assert r.status_code == 302
    r = await client.get(
        f"/c/{b['id']}", headers={"Sec-Purpose": "prefetch"}, follow_redirects=False
    )
    assert r.status_code == 302
    stats = (await client.get(f"/api/v1/banners/{b['id']}/stats")).json()
    assert stats["total_clicks"] == 0


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/api/v1/banners/0", {}, 400),
        ("get", "/api/v1/banners/abc", {}, 404),
        ("get", "/api/v1/banners/99999999999999999999999", {}, 400),
        ("get", "/api/v1/banners/4242", {}, 404),
        ("get", "/api/v1/banners/4242/stats", {}, 404),
        ("get", "/api/v1/banners/4242/with-stats", {}, 404),
        ("post", "/api/v1/banners/4242/clicks", {"headers": INGEST}, 404),
        ("get", "/api/v1/banners/top?limit=0", {}, 400),
        ("get", "/api/v1/banners/top?limit=101", {}, 400),
        ("get", "/api/v1/banners/top?limit=many", {}, 400),
        ("get", "/api/v1/banners?limit=0", {}, 400),
        ("get", "/api/v1/banners?offset=-1", {}, 400),
        (
            "get",
            "/api/v1/banners/1/clicks?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            {},
            400,
        ),
        (
            "get",
            "/api/v1/banners/1/clicks?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&interval=week",
            {},
            400,
        ),
        ("get", "/api/v1/banners/1/clicks?from=yesterday&to=today", {}, 400),
        ("get", "/api/v1/banners/1/clicks?to=2026-01-02T00:00:00Z", {}, 400),
        (
            "get",
            "/api/v1/banners/1/clicks?from=2000-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&interval=minute",
            {},
            400,
        ),
        (
            "post",
            "/api/v1/banners",
            {"content": b"{not json", "headers": {**ADMIN, "content-type": "application/json"}},
            400,
        ),
        ("post", "/api/v1/banners", {"json": {"name": "x"}, "headers": ADMIN}, 400),
        (
            "post",
            "/api/v1/banners",
            {
                "json": {
                    "name": "x",
                    "image_url": "javascript:alert(1)",
                    "target_url": "https://a.example",
                },
                "headers": ADMIN,
            },
            400,
        ),
        (
            "post",
            "/api/v1/banners",
            {
                "json": {
                    "name": "x",
                    "image_url": "https://a.example/i",
                    "target_url": "not a url at all",
                },
                "headers": ADMIN,
            },
            400,
        ),
        (
            "post",
            "/api/v1/banners",
            {
                "json": {
                    "name": "",
                    "image_url": "https://a.example/i",
                    "target_url": "https://a.example",
                },
                "headers": ADMIN,
            },
            400,
        ),
        (
            "post",
            "/api/v1/banners",
            {
                "json": {
                    "name": "x",
                    "image_url": "https://a.example/i",
                    "target_url": "https://a.example",
                    "extra": 1,
                },
                "headers": ADMIN,
            },
            400,
        ),
        ("post", "/api/v1/banners", {"json": ["a", "list"], "headers": ADMIN}, 400),
        (
            "post",
            "/api/v1/banners",
            {
                "json": {
                    "name": "x",
                    "image_url": "https://a.example/i",
                    "target_url": "https://a.example",
                }
            },
            401,
        ),
        (
            "post",
            "/api/v1/banners",
            {
                "json": {
                    "name": "x",
                    "image_url": "https://a.example/i",
                    "target_url": "https://a.example",
                },
                "headers": {"Authorization": "Bearer wrong"},
            },
            401,
        ),
        ("put", "/api/v1/banners/1", {"json": {"name": "x"}}, 401),
        ("delete", "/api/v1/banners/1", {}, 401),
        ("put", "/api/v1/banners/4242", {"json": {"name": "x"}, "headers": ADMIN}, 404),
        ("put", "/api/v1/banners/4242", {"json": {"active": "yes"}, "headers": ADMIN}, 400),
        ("delete", "/api/v1/banners/4242", {"headers": ADMIN}, 404),
        ("get", "/nowhere", {}, 404),
        ("patch", "/api/v1/banners/1", {"json": {}, "headers": ADMIN}, 405),
    ],
)
async def test_bad_input_gets_a_json_4xx(
    shared_client: Client, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    await make_banner(shared_client)
    r = await shared_client.request(method.upper(), path, **kwargs)
    assert_error(r, status)


@pytest.mark.parametrize("settings_overrides", [{"admin_token": ""}])
async def test_writes_refused_without_configured_token(client: Client) -> None:
    r = await client.post(
        "/api/v1/banners",
        json={"name": "x", "image_url": "https://a.example/i", "target_url": "https://a.example"},
        headers={"Authorization": "Bearer "},
    )
    assert_error(r, 403, "forbidden")


async def test_openapi_and_health(client: Client) -> None:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/v1/banners/{banner_id}/with-stats" in paths and "/c/{banner_id}" in paths
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json()["checks"]["database"]["status"] == "ok"
