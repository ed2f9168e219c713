"""Capture the README's dashboard screenshots: ``python -m tests.support.screenshots [DIR]``.

Starts a server on a throwaway SQLite database with the demo data, reads through the API
for a while so the cache panel has something to show, signs in, and saves every page
(overview, filtered overview, a banner, the banner list and form, the placement list, a
placement and its form, live, operations, sign-in, a 404) at desktop width and at 375 px (default
DIR: docs/screenshots).

Then ``ops-outage`` (alone with ``--outage-only``): two workers on a throwaway PostgreSQL
(pgserver) behind a loopback proxy, which is cut while clicks arrive, so ``/ops`` shows
each worker spooling.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page

from tests.support.browser import chromium
from tests.support.proxy import TcpProxy
from tests.support.server import ServerProcess
from tests.support.services import (
    PostgresFactory,
    postgres_proxy_target,
    postgres_server,
    via_proxy,
)

PAGES = (
    ("overview", "/?range=7d"),
    ("filtered", "/?range=30d&country=DE&utm_campaign=black-friday"),
    ("banner", "/banners/1?range=30d"),
    ("banners", "/banners"),
    ("banner-form", "/banners/1/edit"),
    ("placements", "/placements"),
    ("placement", "/placements/2"),
    ("placement-form", "/placements/2/edit"),
    ("live", "/live"),
    ("ops", "/ops"),
    ("login", "/login"),
    ("not-found", "/no-such-page"),
)
WIDTHS = ((1280, ""), (375, "-375"))
ADMIN_TOKEN = "screenshot-admin-token"


def cache_traffic(url: str, seconds: float) -> None:
    """Reads shaped like a busy dashboard: mostly the popular banners, so hits dominate."""
    rng = random.Random(3)
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=10) as http:
        while time.monotonic() < deadline:
            banner = min(12, int(rng.paretovariate(1.2)))
            http.get(f"/api/v1/banners/{banner}/with-stats")
            http.get("/api/v1/banners/top", params={"limit": rng.choice((5, 10))})
            time.sleep(0.01)


def sign_in(browser: Browser, url: str, width: int) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(url + "/login")
    page.fill("#token", ADMIN_TOKEN)
    with page.expect_navigation():
        page.click("form[data-login-form] button[type=submit]")
    return page


def ops_during_outage(browser: Browser, out: Path) -> None:
    """/ops of two workers whose database went away while clicks arrived."""
    with postgres_server() as admin_url, tempfile.TemporaryDirectory() as tmp:
        factory = PostgresFactory(admin_url)
        url = factory.create()
        proxy = TcpProxy(*postgres_proxy_target(url))
        proxy.start()
        env = {
            "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN,
            "BANNERTRACK_SESSION_DIR": str(Path(tmp) / "sessions"),
            "BANNERTRACK_SPOOL_DIR": str(Path(tmp) / "spool"),
            "BANNERTRACK_WORKERS": "2",
        }
        try:
            with ServerProcess(
                via_proxy(url, proxy.port), Path(tmp) / "server.log", env=env
            ) as srv:
                admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
                banner = {
                    "image_url": "https://a.example/x.png",
                    "target_url": "https://b.example/",
                }
                ids = [
                    httpx.post(
                        f"{srv.url}/api/v1/banners", json={**banner, "name": f"b{i}"}, headers=admin
                    ).json()["id"]
                    for i in range(3)
                ]
                for _ in range(8):  # a connection each: both workers cache every banner
                    for banner_id in ids:
                        httpx.get(f"{srv.url}/c/{banner_id}", headers={"User-Agent": "warm"})
                pages = [(sign_in(browser, srv.url, w), suffix) for w, suffix in WIDTHS]
                proxy.stop()
                rng = random.Random(5)
                for n in range(60):
                    agent = f"Mozilla/5.0 (X11; Linux x86_64) Firefox/{100 + n}.0"
                    httpx.get(f"{srv.url}/c/{rng.choice(ids)}", headers={"User-Agent": agent})
                time.sleep(3)  # the oldest spooled batch a few seconds old, as in an outage
                for page, suffix in pages:
                    page.goto(srv.url + "/ops")
                    page.screenshot(path=str(out / f"ops-outage{suffix}.png"), full_page=True)
                    print(out / f"ops-outage{suffix}.png")
                    page.context.close()
                proxy.start()
        finally:
            proxy.close()
            factory.close()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'demo.db'}"
        env = {**os.environ, "BANNERTRACK_DATABASE_URL": db}
        server_env = {
            "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN,
            "BANNERTRACK_SESSION_DIR": str(Path(tmp) / "sessions"),
        }
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bannertrack",
                "demo",
                "--seed",
                "14",
                "--days",
                "60",
                "--clicks",
                "50000",
                "--url",
                "http://127.0.0.1:9",
            ],
            env=env,
            check=True,
        )
        with (
            ServerProcess(db, Path(tmp) / "server.log", env=server_env) as server,
            chromium() as browser,
        ):
            cache_traffic(server.url, 35.0)  # a few 10-second samples for the hit-rate line
            for width, suffix in WIDTHS:
                context = browser.new_context(viewport={"width": width, "height": 900})
                page = context.new_page()
                page.goto(server.url + "/login")
                page.screenshot(path=str(out / f"login{suffix}.png"), full_page=True)
                page.fill("#token", ADMIN_TOKEN)
                with page.expect_navigation():
                    page.click("form[data-login-form] button[type=submit]")
                for name, path in PAGES:
                    if name == "login":
                        continue
                    page.goto(server.url + path)
                    page.screenshot(path=str(out / f"{name}{suffix}.png"), full_page=True)
                    print(out / f"{name}{suffix}.png")
                context.close()
    with chromium() as browser:
        ops_during_outage(browser, out)


if __name__ == "__main__":
    where = Path(next((a for a in sys.argv[1:] if not a.startswith("--")), "docs/screenshots"))
    if "--outage-only" in sys.argv:  # only ops-outage*.png (PostgreSQL, two workers)
        with chromium() as browser:
            ops_during_outage(browser, where)
    else:
        main(where)
