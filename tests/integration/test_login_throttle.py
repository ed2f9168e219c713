"""/login refuses a client that keeps sending wrong tokens: 429 with Retry-After, the right
token included, while another client signs in; the throttle keeps hashed keys only.

Two clients with their own addresses (``httpx.ASGITransport(client=...)``) against one app.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from tests.conftest import ADMIN_TOKEN
from tests.integration.test_dashboard_http import csrf_of
from tests.integration.test_link_fast_path import litestar_of

from bannertrack.api.app import create_app
from bannertrack.config import Settings
from bannertrack.dashboard.login_throttle import BURST, LoginThrottle

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])
GUESSER, ADMIN_DESK = "203.0.113.77", "198.51.100.4"


@asynccontextmanager
async def clients(
    database_url: str, tmp: str
) -> AsyncIterator[tuple[Litestar, httpx.AsyncClient, httpx.AsyncClient]]:
    settings = Settings(  # type: ignore[call-arg]
        database_url=database_url, admin_token=ADMIN_TOKEN, session_dir=tmp
    )
    app = litestar_of(create_app(settings))

    def client(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://t.local")

    async with app.lifespan(), client(GUESSER) as guesser, client(ADMIN_DESK) as desk:
        yield app, guesser, desk


async def attempt(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = (await client.get("/login")).text
    return await client.post("/login", data={"csrf": csrf_of(form), "token": token})


async def test_wrong_tokens_are_refused_per_client(database_url: str, tmp_path: Path) -> None:
    async with clients(database_url, str(tmp_path)) as (app, guesser, desk):
        for _ in range(BURST):
            assert (await attempt(guesser, "guess")).status_code == 401
        refused = await attempt(guesser, "guess")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 30
        assert "Too many wrong tokens from here" in refused.text
        # Refused whatever the token: the guesser cannot tell a right one.
        right = await attempt(guesser, ADMIN_TOKEN)
        assert right.status_code == 429
        assert (await guesser.get("/ops")).status_code == 401  # not signed in
        # Another address is not braked, and its wrong token counts for it alone.
        assert (await attempt(desk, "typo")).status_code == 401
        signed_in = await attempt(desk, ADMIN_TOKEN)
        assert signed_in.status_code == 303
        throttle = app.state["login_throttle"]
        assert isinstance(throttle, LoginThrottle)
        assert len(throttle) == 1  # the desk's bucket emptied on its sign-in
        (key,) = throttle.keys()
        assert re.fullmatch(r"[0-9a-f]{32}", key) and GUESSER not in key
