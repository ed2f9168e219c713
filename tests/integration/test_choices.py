"""A value outside a parameter's set is a 400 that lists the set (one SQLite run)."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.conftest import ADMIN
from tests.integration.test_api import assert_error

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.mark.parametrize(
    ("method", "path", "listed"),
    [
        ("GET", "/api/v1/breakdown?by=city", "referrer, utm_source, utm_medium"),
        ("GET", "/api/v1/banners/top?count=unique", "one of: total, valid"),
        (
            "GET",
            "/api/v1/traffic?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z&interval=week",
            "one of: minute, hour, day",
        ),
        ("POST", "/api/v1/cache/namespace/nope/invalidate", "top_banners, breakdown"),
    ],
)
async def test_a_wrong_choice_names_the_valid_ones(
    client: AsyncTestClient[Litestar], method: str, path: str, listed: str
) -> None:
    r = await client.request(method, path, headers=ADMIN)
    assert_error(r, 400, "invalid_input")
    assert listed in r.json()["error"]["message"]
