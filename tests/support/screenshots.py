"""Capture the README's dashboard screenshots: ``python -m tests.support.screenshots [DIR]``.

Starts a server on a throwaway SQLite database with the demo data, reads through the API
for a while so the cache panel has something to show, signs in, and saves every page
(overview, filtered overview, a banner, the banner list and form, live, operations,
sign-in, a 404) at desktop width and at 375 px (default DIR: docs/screenshots).
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

from tests.support.browser import chromium
from tests.support.server import ServerProcess

PAGES = (
    ("overview", "/?range=7d"),
    ("filtered", "/?range=30d&country=DE&utm_campaign=black-friday"),
    ("banner", "/banners/1?range=30d"),
    ("banners", "/banners"),
    ("banner-form", "/banners/1/edit"),
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


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/screenshots"))
