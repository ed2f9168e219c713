"""Placements over HTTP, SQLite and PostgreSQL: CRUD, the 400s, the serve's two formats
and the signed click URL's verdicts as a client and the clicks table see them."""

from __future__ import annotations

import base64
import logging
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from tests.conftest import ADMIN
from tests.integration.test_api import assert_error, make_banner
from tests.support.waiting import wait_until

from bannertrack.clicks.salt_key import SaltKey
from bannertrack.clicks.signing import ClickSigner
from bannertrack.db.engine import create_engine
from bannertrack.db.tables import clicks

Client = AsyncTestClient[Litestar]
SALT_KEY = "placement-tests-salt-key-" + "x" * 20
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120"}
RANGE = "from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"salt_key": SALT_KEY, "impression_flush_interval": 0.05}


async def make_placement(client: Client, banners: dict[int, int], **extra: Any) -> int:
    r = await client.post("/api/v1/placements", json={"name": "top", **extra}, headers=ADMIN)
    assert r.status_code == 201, r.text
    placement = int(r.json()["id"])
    body = {"banners": [{"banner_id": b, "weight": w} for b, w in banners.items()]}
    r = await client.put(f"/api/v1/placements/{placement}/banners", json=body, headers=ADMIN)
    assert r.status_code == 200, r.text
    return placement


async def test_placement_crud(client: Client) -> None:
    r = await client.post("/api/v1/placements", json={"name": "side", "width": 160})
    assert_error(r, 401)
    r = await client.post(
        "/api/v1/placements", json={"name": "side", "width": 160, "height": 600}, headers=ADMIN
    )
    assert r.status_code == 201, r.text
    p = r.json()
    assert set(p) == {"id", "name", "width", "height", "created_at", "updated_at"}
    assert (await client.get(f"/api/v1/placements/{p['id']}")).json() == p
    r = await client.put(f"/api/v1/placements/{p['id']}", json={"height": None}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["height"] is None and r.json()["width"] == 160
    page = (await client.get("/api/v1/placements?limit=10")).json()
    assert page["total"] == 1 and [x["id"] for x in page["items"]] == [p["id"]]
    r = await client.get(f"/api/v1/placements/{p['id']}/banners")
    assert r.json() == {"placement_id": p["id"], "banners": []}
    assert (await client.delete(f"/api/v1/placements/{p['id']}", headers=ADMIN)).status_code == 204
    assert_error(await client.get(f"/api/v1/placements/{p['id']}"), 404, "not_found")
    assert_error(await client.get(f"/api/v1/placements/{p['id']}/banners"), 404)
    assert_error(await client.get(f"/api/v1/placements/{p['id']}/stats?{RANGE}"), 404)
    assert_error(await client.delete(f"/api/v1/placements/{p['id']}", headers=ADMIN), 404)


@pytest.mark.parametrize(
    "banners",
    [
        [{"banner_id": "B", "weight": 0}],
        [{"banner_id": "B", "weight": 1001}],
        [{"banner_id": "B", "weight": 1.5}],
        [{"banner_id": 987654, "weight": 1}],  # no such banner
        [{"banner_id": "B", "weight": 1}, {"banner_id": "B", "weight": 2}],  # twice
        [{"banner_id": "B"}],
    ],
)
async def test_bad_banner_lists_are_400(client: Client, banners: list[dict[str, Any]]) -> None:
    b = (await make_banner(client))["id"]
    placement = await make_placement(client, {})
    body = {"banners": [{**x, "banner_id": b if x["banner_id"] == "B" else x["banner_id"]}
                        for x in banners]}  # fmt: skip
    r = await client.put(f"/api/v1/placements/{placement}/banners", json=body, headers=ADMIN)
    assert_error(r, 400, "invalid_input")
    listed = (await client.get(f"/api/v1/placements/{placement}/banners")).json()
    assert listed["banners"] == []  # nothing half-applied


@pytest.mark.parametrize(
    "fields",
    [
        {"countries": ["XX"]},
        {"countries": ["DEU"]},
        {"devices": ["phone"]},
        {"cap_per_day": 0},
        {"starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"},
        {"starts_at": "2026-12-02T00:00:00Z", "ends_at": "2026-12-02T00:00:00Z"},
        {"starts_at": "2026-12-02T00:00:00"},  # no offset
        {"ends_at": "tomorrow"},
    ],
)
async def test_bad_schedule_or_targeting_is_400(
    shared_client: Client, fields: dict[str, Any]
) -> None:
    r = await shared_client.post(
        "/api/v1/banners",
        json={"name": "x", "image_url": "https://c.example/a.png",
              "target_url": "https://t.example/", **fields},
        headers=ADMIN,
    )  # fmt: skip
    assert_error(r, 400, "invalid_input")
    b = (await make_banner(shared_client))["id"]
    assert_error(await shared_client.put(f"/api/v1/banners/{b}", json=fields, headers=ADMIN), 400)


async def test_an_end_before_the_stored_start_is_400_and_changes_nothing(client: Client) -> None:
    b = await make_banner(client, starts_at="2026-12-10T00:00:00Z", countries=["DE", "AT", "DE"])
    assert b["countries"] == ["AT", "DE"]
    r = await client.put(
        f"/api/v1/banners/{b['id']}", json={"ends_at": "2026-12-09T00:00:00Z"}, headers=ADMIN
    )
    assert_error(r, 400)
    assert (await client.get(f"/api/v1/banners/{b['id']}")).json()["ends_at"] is None


async def test_the_serve_answers_html_json_204_and_404(client: Client) -> None:
    b = await make_banner(client, 1, name='Winter <sale> & "more"')
    placement = await make_placement(client, {b["id"]: 1}, width=300, height=250)
    r = await client.get(f"/p/{placement}", headers=BROWSER)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "<script" not in html.lower()
    assert 'alt="Winter &lt;sale&gt; &amp; &quot;more&quot;"' in html
    assert 'target="_top"' in html and 'width="300" height="250"' in html
    assert f'src="{b["image_url"]}"' in html
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    r = await client.get(f"/p/{placement}?format=json", headers=BROWSER)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
    body = r.json()
    assert set(body) == {"banner_id", "image_url", "click_url", "width", "height"}
    assert (body["banner_id"], body["width"], body["height"]) == (b["id"], 300, 250)
    url = urlsplit(body["click_url"])
    assert url.path == f"/c/{b['id']}"
    assert {k for k, _ in parse_qsl(url.query)} == {"p", "ts", "sig"}
    assert_error(await client.get(f"/p/{placement}?format=xml"), 400)
    assert_error(await client.get("/p/987654"), 404, "not_found")
    await client.put(f"/api/v1/banners/{b['id']}", json={"active": False}, headers=ADMIN)
    r = await client.get(f"/p/{placement}?format=json", headers=BROWSER)
    assert r.status_code == 204 and r.content == b""
    assert r.headers["access-control-allow-origin"] == "*"


async def test_impressions_equal_the_serves_answered_200(client: Client) -> None:
    b1, b2 = (await make_banner(client, 1))["id"], (await make_banner(client, 2))["id"]
    placement = await make_placement(client, {b1: 3, b2: 1})
    served = 0
    for _ in range(40):
        r = await client.get(f"/p/{placement}?format=json", headers=BROWSER)
        assert r.status_code == 200
        served += 1
    r = await client.head(f"/p/{placement}", headers=BROWSER)  # answered, not counted
    assert r.status_code == 200

    async def counted() -> bool:
        s = (await client.get(f"/api/v1/placements/{placement}/stats?{RANGE}")).json()
        return bool(s["impressions"] == served)

    await wait_until(counted)
    stats = (await client.get(f"/api/v1/placements/{placement}/stats?{RANGE}")).json()
    assert sum(x["impressions"] for x in stats["banners"]) == served
    assert (stats["clicks"], stats["valid_clicks"], stats["ctr"]) == (0, 0, 0.0)


def _signer(at: float) -> ClickSigner:
    return ClickSigner(SaltKey(SALT_KEY.encode()).derive(b"click url"), clock=lambda: at)


async def _clicks_table(database_url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            c = clicks.c
            rows = await conn.execute(
                select(c.placement_id, c.signature, c.bot, c.bot_reason).order_by(c.id)
            )
            return [tuple(r) for r in rows]
    finally:
        await engine.dispose()


async def test_signatures_valid_counts_the_rest_are_set_apart_with_reasons(
    client: Client, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    b = await make_banner(client, 1)
    placement = await make_placement(client, {b["id"]: 1})
    served = (await client.get(f"/p/{placement}?format=json", headers=BROWSER)).json()
    valid = urlsplit(served["click_url"])
    old = _signer(time.time() - 2 * 86_400).query(b["id"], placement)
    tampered = valid.query.replace(f"p={placement}", f"p={placement + 1}")
    missing = f"p={placement}&ts={int(time.time())}"
    bodies = [served["click_url"]]
    for query in (valid.query + "&utm_source=news", old, tampered, missing, ""):
        r = await client.get(f"/c/{b['id']}?{query}", headers=BROWSER, follow_redirects=False)
        assert r.status_code == 302, r.text
        location = r.headers["location"]
        assert not {"p", "ts", "sig"} & {k for k, _ in parse_qsl(urlsplit(location).query)}
        bodies.append(location + r.text)
    assert location == b["target_url"]  # the plain link as before

    async def all_written() -> bool:
        return len(await _clicks_table(database_url)) == 5

    await wait_until(all_written)
    assert await _clicks_table(database_url) == [
        (placement, "valid", False, None),
        (placement, "expired", True, "signature_expired"),
        (None, "tampered", True, "signature_tampered"),
        (None, "missing", True, "signature_missing"),
        (None, None, False, None),
    ]
    stats = (await client.get(f"/api/v1/banners/{b['id']}/stats")).json()
    assert (stats["total_clicks"], stats["valid_clicks"], stats["bot_clicks"]) == (5, 2, 3)
    pstats = (await client.get(f"/api/v1/placements/{placement}/stats?{RANGE}")).json()
    assert (pstats["clicks"], pstats["valid_clicks"]) == (2, 1)
    # The key (and the salt key it comes from) is in no response and no log line.
    key = SaltKey(SALT_KEY.encode()).derive(b"click url")
    secrets = [SALT_KEY, key.hex(), base64.urlsafe_b64encode(key).decode().rstrip("=")]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in secrets:
        assert all(secret not in text for text in bodies) and secret not in logged


async def test_the_fast_path_answers_as_the_litestar_route(client: Client) -> None:
    """``/p/{id}`` and ``/p/{id}?format=json`` are answered in front of Litestar; with any
    other query Litestar answers. Both must say the same."""
    b = await make_banner(client, 1)
    placement = await make_placement(client, {b["id"]: 1}, width=120)
    for fast, routed in (
        (f"/p/{placement}", f"/p/{placement}?format=html&via=litestar"),
        (f"/p/{placement}?format=json", f"/p/{placement}?format=json&via=litestar"),
        ("/p/987654", "/p/987654?via=litestar"),
    ):
        one = await client.get(fast, headers=BROWSER)
        two = await client.get(routed, headers=BROWSER)
        assert one.status_code == two.status_code
        assert {k: v for k, v in one.headers.items() if k != "content-length"} == {
            k: v for k, v in two.headers.items() if k != "content-length"
        }
        if one.headers["content-type"] == "application/json" and one.status_code == 200:
            a, c = one.json(), two.json()
            assert {k: v for k, v in a.items() if k != "click_url"} == {
                k: v for k, v in c.items() if k != "click_url"
            }
        elif one.status_code == 200:
            assert one.text.split("<a href")[0] == two.text.split("<a href")[0]
        else:
            assert one.json() == two.json()
