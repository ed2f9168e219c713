"""Create a banner over HTTP: the set-up almost every API, dashboard and server test needs.

``make_banner`` posts to ``/api/v1/banners`` as the admin, checks the 201 and returns the
banner's JSON. ``client`` is a client (the in-process ``AsyncTestClient`` is an
``httpx.AsyncClient`` too) or a server's base URL. ``make_banner_sync`` is the same for
plain code driving a server process. The body is ``banner_json(i)``; a test that needs a
field of its own passes it (``make_banner(client, name="Spring sale")``). ``tagged_banner``
creates one whose link adds a click id, through a repository (no HTTP).
"""

from __future__ import annotations

from typing import Any

import httpx

from bannertrack.models import Banner, BannerCreate
from bannertrack.repository import Repository
from tests.conftest import ADMIN

PATH = "/api/v1/banners"


def banner_json(i: int = 1, **fields: Any) -> dict[str, Any]:
    """A valid ``BannerCreate`` body, distinct per ``i``; ``fields`` override or add."""
    return {
        "name": f"banner {i}",
        "image_url": f"https://cdn.example.com/{i}.png",
        "target_url": f"https://shop.example.com/{i}",
        **fields,
    }


async def tagged_banner(repo: Repository, param: str = "bt_click") -> Banner:
    """A banner with ``click_id_param``, created through ``repo``."""
    return await repo.create_banner(BannerCreate(**banner_json(click_id_param=param)))


async def make_banner(client: httpx.AsyncClient | str, i: int = 1, **fields: Any) -> dict[str, Any]:
    body = banner_json(i, **fields)
    if isinstance(client, str):
        async with httpx.AsyncClient(base_url=client, timeout=10) as own:
            r = await own.post(PATH, json=body, headers=ADMIN)
    else:
        r = await client.post(PATH, json=body, headers=ADMIN)
    return _created(r)


def make_banner_sync(client: httpx.Client | str, i: int = 1, **fields: Any) -> dict[str, Any]:
    body = banner_json(i, **fields)
    if isinstance(client, str):
        r = httpx.post(client + PATH, json=body, headers=ADMIN, timeout=10)
    else:
        r = client.post(PATH, json=body, headers=ADMIN)
    return _created(r)


def _created(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body
