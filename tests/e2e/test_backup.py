"""``bannertrack backup`` against a live server that keeps recording clicks."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until_sync

from bannertrack.cli import main

BANNER = {"name": "b", "image_url": "https://a.example/i.png", "target_url": "https://a.example/"}
MOST = 5000  # the writer stops by itself after this many clicks


class Clicker(threading.Thread):
    """Reports clicks one after another; ``acknowledged`` counts the committed ones."""

    def __init__(self, url: str, banner_id: int) -> None:
        super().__init__(daemon=True)
        self.url = f"{url}/api/v1/banners/{banner_id}/clicks"
        self.acknowledged = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(headers=ADMIN, timeout=10) as client:
            for i in range(MOST):
                if self.stop.is_set():
                    return
                r = client.post(self.url, json={"ip": f"198.51.100.{i % 250}", "user_agent": "a"})
                assert r.status_code == 201, r.text
                self.acknowledged += 1


def test_a_backup_while_clicks_arrive_holds_every_click_committed_before_it(
    tmp_path: Path,
) -> None:
    database = tmp_path / "live.db"
    url = f"sqlite:///{database}"
    env = {"BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN, "BANNERTRACK_LOG_LEVEL": "WARNING"}
    with ServerProcess(url, tmp_path / "server.log", env=env) as server:
        banner = httpx.post(f"{server.url}/api/v1/banners", json=BANNER, headers=ADMIN).json()
        clicker = Clicker(server.url, banner["id"])
        clicker.start()
        try:
            wait_until_sync(lambda: clicker.acknowledged >= 200, timeout=30)
            before = clicker.acknowledged
            copy = tmp_path / "copy.db"
            result = CliRunner().invoke(
                main, ["backup", str(copy)], env={"BANNERTRACK_DATABASE_URL": url}
            )
            after = clicker.acknowledged
            assert result.exit_code == 0, result.output
            # The server kept writing through the backup and after it.
            wait_until_sync(lambda: clicker.acknowledged > after, timeout=30)
        finally:
            clicker.stop.set()
            clicker.join(30)
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        (clicks,) = db.execute("SELECT count(*) FROM clicks").fetchone()
        (journal,) = db.execute("PRAGMA journal_mode").fetchone()
    assert before <= clicks <= after, (before, clicks, after)
    assert journal == "delete"  # opens alone: no -wal file needed beside it
    assert f"{clicks} clicks" in result.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u@/db?host=/run/x", "pg_dump"),
        ("sqlite:///{tmp}/missing.db", "no SQLite database"),
    ],
)
def test_what_cannot_be_backed_up_is_one_line(tmp_path: Path, url: str, message: str) -> None:
    env = {"BANNERTRACK_DATABASE_URL": url.format(tmp=tmp_path)}
    result = CliRunner().invoke(main, ["backup", str(tmp_path / "x.db")], env=env)
    assert result.exit_code == 1 and message in result.stderr
    assert "Traceback" not in result.output
