"""The dashboard's snippets are absolute URLs built by ``PublicUrls`` (one SQLite run: the
database plays no part). Behind a real proxy: tests/e2e/test_behind_proxy.py."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from tests.integration.test_api import make_banner

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

Client = AsyncTestClient[Litestar]


def snippet_urls(page: str) -> set[str]:
    return set(re.findall(r"https?://[^\s\"&<]+/[ci]/\d+", page))


@pytest.mark.parametrize("settings_overrides", [{"public_url": "https://ads.example.com/"}])
async def test_the_public_url_names_every_snippet(client: Client) -> None:
    banner = await make_banner(client)
    page = (
        await client.get(
            f"/banners/{banner['id']}",
            headers={"host": "internal:8080", "x-forwarded-host": "evil.example"},
        )
    ).text
    bid = banner["id"]
    assert snippet_urls(page) == {
        f"https://ads.example.com/c/{bid}",
        f"https://ads.example.com/i/{bid}",
    }


async def test_without_it_the_request_host_and_never_an_untrusted_forwarded_header(
    client: Client,
) -> None:
    banner = await make_banner(client)
    headers = {
        "host": "ads.example:8080",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "evil.example",
    }
    page = (await client.get(f"/banners/{banner['id']}", headers=headers)).text
    bid = banner["id"]
    assert snippet_urls(page) == {
        f"http://ads.example:8080/c/{bid}",
        f"http://ads.example:8080/i/{bid}",
    }
