"""The served OpenAPI document says what the server does (issue 13), checked piece by piece.

Schemathesis checks the whole contract with generated requests (tests/e2e); these tests
pin the parts a generated client relies on, one assertion each, and the server-side
rules that keep the document honest.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.conftest import ADMIN
from tests.support.banners import make_banner

from bannertrack.api.examples import REQUEST_STRUCTS
from bannertrack.caching.keys import NAMESPACES

Client = AsyncTestClient[Litestar]
ADMIN_OPERATIONS = {
    ("post", "/api/v1/banners"),
    ("put", "/api/v1/banners/{banner_id}"),
    ("delete", "/api/v1/banners/{banner_id}"),
    ("get", "/api/v1/banners/{banner_id}/clicks.csv"),
    ("get", "/api/v1/banners/{banner_id}/conversions.csv"),
    ("post", "/api/v1/cache/clear"),
    ("post", "/api/v1/cache/warm"),
    ("post", "/api/v1/cache/banner/{banner_id}/invalidate"),
    ("post", "/api/v1/cache/namespace/{namespace}/invalidate"),
    ("post", "/api/v1/placements"),
    ("put", "/api/v1/placements/{placement_id}"),
    ("delete", "/api/v1/placements/{placement_id}"),
    ("put", "/api/v1/placements/{placement_id}/banners"),
}
INGEST_OPERATIONS = {
    ("post", "/api/v1/banners/{banner_id}/clicks"),
    ("post", "/api/v1/conversions"),
}
METHODS = ("get", "put", "post", "delete", "head")


@pytest.fixture
async def doc(client: Client) -> dict[str, Any]:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


async def test_every_error_is_documented_with_the_real_body(doc: dict[str, Any]) -> None:
    assert doc["components"]["schemas"]["ErrorBody"]["properties"]["error"]
    for method, path, op in operations(doc):
        errors = {s: r for s, r in op["responses"].items() if s.startswith(("4", "5"))}
        assert errors or path in ("/metrics", "/api/v1/cache/stats"), (method, path)
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            if path == "/healthz":
                continue  # its 503 carries the same body as its 200
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
            example = next(iter(response["content"]["application/json"]["examples"].values()))
            assert set(example["value"]["error"]) == {"code", "message"}
        assert "status_code" not in str(op["responses"]), (method, path)


async def test_admin_operations_need_the_bearer_scheme(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["AdminToken"] == {"type": "http", "scheme": "bearer", **_desc(schemes)}
    for method, path, op in operations(doc):
        if (method, path) in ADMIN_OPERATIONS:
            assert op["security"] == [{"AdminToken": []}], (method, path)
            assert {"401", "403"} <= set(op["responses"]), (method, path)
        elif (method, path) in INGEST_OPERATIONS:
            assert op["security"] == [{"IngestToken": []}, {"AdminToken": []}]
        else:
            assert "security" not in op, (method, path)


async def test_every_guarded_operation_refuses_a_missing_or_wrong_token(
    client: Client, doc: dict[str, Any]
) -> None:
    """401 and the error body, before any parameter, body or row is looked at.

    This is what the anonymous Schemathesis run (tests/e2e) would learn from the guarded
    operations, where every generated request gets this same answer: it leaves them out
    and this test asks each one twice.
    """
    guarded = {(method, path) for method, path, op in operations(doc) if "security" in op}
    assert guarded == ADMIN_OPERATIONS | INGEST_OPERATIONS
    for method, path in sorted(guarded):
        assert "401" in doc["paths"][path][method]["responses"], (method, path)
        url = re.sub(r"\{(banner_id|placement_id)\}", "4242", path)
        url = url.replace("{namespace}", NAMESPACES[0])
        body = {"json": {}} if method in ("post", "put") else {}
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = await client.request(method.upper(), url, headers=headers, **body)
            assert r.status_code == 401, (method, url, headers, r.text)
            error = r.json()["error"]
            assert set(error) == {"code", "message"} and error["message"], (method, url)


def _desc(schemes: dict[str, Any]) -> dict[str, Any]:
    return {"description": schemes["AdminToken"]["description"]}


async def test_the_link_is_a_302_and_the_pixel_a_gif(doc: dict[str, Any]) -> None:
    link = doc["paths"]["/c/{banner_id}"]["get"]["responses"]
    assert "200" not in link
    assert link["302"]["headers"]["Location"]["required"] is True
    assert "content" not in link["302"]
    pixel = doc["paths"]["/i/{banner_id}"]["get"]["responses"]["200"]
    serve = doc["paths"]["/p/{placement_id}"]["get"]["responses"]
    assert set(serve["200"]["content"]) == {"text/html", "application/json"}
    assert serve["200"]["content"]["application/json"]["schema"]["required"] == [
        "banner_id",
        "image_url",
        "click_url",
        "width",
        "height",
    ]
    assert {"204", "404"} <= set(serve)
    assert list(pixel["content"]) == ["image/gif"]


async def test_bodies_bounds_enums_and_urls(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for name in (
        "BannerCreate",
        "BannerUpdate",
        "ClickReport",
        "PlacementCreate",
        "PlacementUpdate",
        "PlacementBannersIn",
    ):
        assert schemas[name]["additionalProperties"] is False, name
        assert schemas[name]["examples"], name
    report = doc["paths"]["/api/v1/banners/{banner_id}/clicks"]["post"]["requestBody"]
    assert report["required"] is False
    banner_id = doc["paths"]["/api/v1/banners/{banner_id}"]["get"]["parameters"][0]["schema"]
    assert banner_id["maximum"] == 2**63 - 1 and isinstance(banner_id["maximum"], int)
    namespace = doc["paths"]["/api/v1/cache/namespace/{namespace}/invalidate"]["post"]
    assert namespace["parameters"][0]["schema"]["$ref"] == "#/components/schemas/CacheNamespace"
    assert set(schemas["CacheNamespace"]["enum"]) == {
        "banner",
        "click_stats",
        "banner_stats",
        "top_banners",
        "breakdown",
        "placement",
    }
    url = schemas["BannerCreate"]["properties"]["target_url"]
    assert url["format"] == "uri" and url["pattern"].startswith("^") and url["description"]
    ip = schemas["ClickReport"]["properties"]["ip"]["oneOf"]
    assert {"ipv4", "ipv6"} == {b.get("format") for b in ip if b.get("type") == "string"}


REQUESTS = {struct.__name__ for struct in REQUEST_STRUCTS}  # bodies a client sends


def refs(node: Any) -> list[str]:
    """Every $ref under ``node``."""
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def inline_enums(node: Any, where: str = "") -> list[str]:
    if isinstance(node, dict):
        own = [where] if "enum" in node else []
        return own + [e for k, v in node.items() for e in inline_enums(v, f"{where}/{k}")]
    if isinstance(node, list):
        return [e for i, v in enumerate(node) for e in inline_enums(v, f"{where}[{i}]")]
    return []


async def test_a_generated_client_reads_as_written(doc: dict[str, Any]) -> None:
    """What a client generator needs: every response field required, method-like
    operation ids, one component per set of choices, typed bodies everywhere."""
    schemas = doc["components"]["schemas"]
    stats = schemas["ClickStats"]
    assert set(stats["required"]) == set(stats["properties"])
    assert {"valid_clicks", "bot_clicks", "repeat_clicks", "impressions", "ctr"} <= set(
        stats["required"]
    )
    for name, schema in schemas.items():
        if name not in REQUESTS and "properties" in schema:
            # incomplete_before is sent only by a filtered range read (omit_defaults).
            expected = set(schema["properties"]) - {"incomplete_before"}
            assert set(schema.get("required", [])) == expected, name
    ops = {
        (method, path): op["operationId"]
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    }
    assert ops[("get", "/api/v1/banners/{banner_id}/stats")] == "get_banner_stats"
    assert ops[("post", "/api/v1/banners")] == "create_banner"
    assert ops[("get", "/api/v1/cache/stats")] == "get_cache_stats"
    assert ops[("head", "/c/{banner_id}")] == "track_click_head"
    assert len(set(ops.values())) == len(ops), "operation ids are unique"
    assert all(op.isidentifier() and op == op.lower() for op in ops.values()), ops
    # Every set of choices lives in one component; the places that use it refer to it.
    enum_places = [w for w in inline_enums(doc) if not w.startswith("/components/schemas/")]
    assert enum_places == [], enum_places
    dimension = "#/components/schemas/BreakdownDimension"
    assert refs(doc["paths"]).count(dimension) == 2 and dimension in refs(schemas["Breakdown"])
    responses = {
        path: doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        for path in ("/api/v1/cache/stats", "/healthz")
    }
    assert responses["/api/v1/cache/stats"]["schema"]["$ref"].endswith("/CacheStatsBody")
    assert responses["/healthz"]["schema"]["$ref"].endswith("/Health")


async def test_options_lists_every_method_of_a_path(client: Client) -> None:
    banner = await make_banner(client)
    for path, allowed in (
        (f"/api/v1/banners/{banner['id']}", "DELETE, GET, OPTIONS, PUT"),
        ("/api/v1/banners", "GET, OPTIONS, POST"),
        (f"/api/v1/banners/{banner['id']}/clicks", "GET, OPTIONS, POST"),
        (f"/c/{banner['id']}", "GET, HEAD, OPTIONS"),
    ):
        r = await client.options(path)
        assert r.status_code == 204 and r.headers["allow"] == allowed, (path, r.headers)


async def test_the_reference_page_loads_nothing_from_elsewhere(client: Client) -> None:
    page = (await client.get("/schema")).text
    assert "/schema/static/swagger-ui-bundle.js" in page
    # The page embeds the document (whose examples hold URLs); what it loads is local.
    loaded = re.findall(r"""(?:src|href)=["']([^"']+)""", page)
    assert loaded and all(url.startswith("/schema/static/") for url in loaded), loaded
    assert "@latest" not in page
    script = await client.get("/schema/static/swagger-ui-bundle.js")
    assert script.status_code == 200 and len(script.content) > 100_000


@pytest.mark.parametrize(
    "body",
    [{"forward_query": 0}, {"active": "true"}, {"name": 5}],
    ids=["int-as-bool", "string-as-bool", "int-as-name"],
)
async def test_bodies_are_decoded_strictly(client: Client, body: dict[str, Any]) -> None:
    banner = await make_banner(client)
    r = await client.put(f"/api/v1/banners/{banner['id']}", json=body, headers=ADMIN)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input", r.text


@pytest.mark.parametrize("value", ["0.5", "1700000000", "-3", "nan"])
async def test_times_are_iso_8601_never_numbers(shared_client: Client, value: str) -> None:
    banner = await make_banner(shared_client)
    for path in (f"/api/v1/banners/{banner['id']}/clicks", "/api/v1/totals"):
        r = await shared_client.get(path, params={"from": "2026-11-01T00:00:00Z", "to": value})
        assert r.status_code == 400 and "ISO 8601" in r.json()["error"]["message"], r.text


@pytest.mark.parametrize("bad", ['"', "<", "{", "|", "^", "`", "\\", "%zz", "%g1"])
async def test_a_url_holds_only_uri_characters(shared_client: Client, bad: str) -> None:
    r = await shared_client.post(
        "/api/v1/banners",
        json={
            "name": "x",
            "image_url": "https://cdn.example.com/a.png",
            "target_url": f"https://shop.example.com/a{bad}b",
        },
        headers=ADMIN,
    )
    assert r.status_code == 400 and "target_url" in r.json()["error"]["message"], r.text
