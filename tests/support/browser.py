"""Debian's chromium, driven by Playwright (its own browser download is not reachable)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "sudo apt-get update && sudo apt-get install -y chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class ChromiumMissingError(RuntimeError):
    pass


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium; a machine without one fails with the command that installs it."""
    if not CHROMIUM.exists():
        raise ChromiumMissingError(f"{CHROMIUM} is missing; install it with: {INSTALL}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
