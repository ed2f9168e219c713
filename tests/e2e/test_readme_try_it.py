"""The README's "Try it" block, run as written against a real server, after a first demo:
its `demo` is run with --reset, and every id the commands use must then exist.

Only the server's address changes (a free port instead of 8080; the cache commands get
it from BANNERTRACK_URL), `.venv/bin/` becomes this interpreter's, `cache test` takes
3 samples, and curl is made to fail on an HTTP error (`--fail`), so a 404 for
banner 1 fails the test instead of printing an error body.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def try_it_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Try it", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the README lost its Try it commands"
    return block.group(1)


def test_the_try_it_commands_work_after_demo_reset(tmp_path: Path) -> None:
    env = {**os.environ, "BANNERTRACK_ADMIN_TOKEN": "change-me"}
    env.pop("BANNERTRACK_DATABASE_URL", None)  # the README's default: ./bannertrack.db
    first = subprocess.run(
        [BIN / "bannertrack", "demo", "--clicks", "500", "--url", "http://127.0.0.1:9"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "created banners 1..12" in first.stdout
    database = f"sqlite:///{tmp_path / 'bannertrack.db'}"
    server = ServerProcess(
        database, tmp_path / "server.log", env={"BANNERTRACK_ADMIN_TOKEN": "change-me"}
    )
    with server:
        block = (
            try_it_block()
            .replace("http://127.0.0.1:8080", server.url)
            .replace(".venv/bin/", f"{BIN}/")
            .replace("bannertrack demo", f"bannertrack demo --reset --url {server.url}")
            .replace("bannertrack cache test", "bannertrack cache test --samples 3")
        )
        assert "demo --reset" in block and server.url in block
        script = 'set -euo pipefail\ncurl() { command curl --fail --max-time 30 "$@"; }\n' + block
        result = subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, env={**env, "BANNERTRACK_URL": server.url},
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert "created banners 1..12" in result.stdout, "the reset demo numbers from 1 again"
        assert "HTTP/1.1 302" in result.stdout  # the tracking link
        banner = httpx.get(f"{server.url}/api/v1/banners/1").json()
        assert banner["id"] == 1
