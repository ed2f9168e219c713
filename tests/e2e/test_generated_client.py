"""A client generated from the served schema is typed as the server answers.

openapi-python-client (pinned in the test extra) generates ``bannertrack_client`` from
a running server's ``/schema/openapi.json``; ``mypy --strict`` checks
``generated_client/use_client.py`` against it, and the program then runs against the
same server: it creates a banner, reports clicks, reads the stats and computes
``valid_clicks / total_clicks``, a breakdown by ``BreakdownDimension``, the cache stats'
``hit_ratio``, ``/healthz``, a placement served as JSON whose click URL is this
server's (``PublicUrls``), and a conversion of a click whose id the link added. A
negative control: the same schema with ClickStats' ``required`` list emptied (as it was
before) must fail mypy on that division.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import ADMIN_TOKEN
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent


def generate(schema: dict[str, Any], into: Path) -> None:
    """``bannertrack_client`` under ``into``, with the program beside it."""
    into.mkdir()
    (into / "openapi.json").write_text(json.dumps(schema))
    (into / "config.yaml").write_text("post_hooks: []\n")  # no formatter run: not needed
    done = subprocess.run(
        [BIN / "openapi-python-client", "generate", "--path", "openapi.json", "--meta", "none",
         "--output-path", "bannertrack_client", "--config", "config.yaml"],
        cwd=into, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    shutil.copy(HERE / "generated_client" / "use_client.py", into / "use_client.py")


def mypy(where: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    # The generated package is followed for its types but not judged: the program is.
    # One cache for both runs: the second reuses the standard library's analysis, and
    # mypy checks each cached module against its file, so the changed model is redone.
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports", "silent",
         "--cache-dir", str(cache), "use_client.py"],
        cwd=where, capture_output=True, text=True, timeout=300,
        env={**os.environ, "MYPYPATH": str(where)},
    )  # fmt: skip


def test_a_generated_client_type_checks_and_works(tmp_path: Path) -> None:
    env = {"BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN, "BANNERTRACK_LOG_LEVEL": "WARNING"}
    with ServerProcess(f"sqlite:///{tmp_path / 'c.db'}", tmp_path / "server.log", env=env) as srv:
        schema = httpx.get(f"{srv.url}/schema/openapi.json").json()
        generate(schema, tmp_path / "client")
        checked = mypy(tmp_path / "client", tmp_path / ".mypy")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        run = subprocess.run(
            [sys.executable, "use_client.py", srv.url, ADMIN_TOKEN],
            cwd=tmp_path / "client", capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
    assert "valid 2 of 3 (0.6667)" in run.stdout, run.stdout
    assert "bots 1" in run.stdout and "Firefox" in run.stdout, run.stdout
    assert f"{srv.url}/c/" in run.stdout, run.stdout
    assert "conversions 1 (signup of click" in run.stdout, run.stdout

    # The control: ClickStats' fields "maybe unset" again, and the division is refused.
    stats = schema["components"]["schemas"]["ClickStats"]
    stats["required"] = [f for f in stats["required"] if f not in ("valid_clicks", "bot_clicks")]
    generate(schema, tmp_path / "loose")
    refused = mypy(tmp_path / "loose", tmp_path / ".mypy")
    assert refused.returncode != 0, refused.stdout
    assert 'Unsupported operand types for / ("Unset" and "int")' in refused.stdout
