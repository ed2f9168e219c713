"""The served OpenAPI document describes what the server does: Schemathesis says so.

Schemathesis (pinned in the test extra) reads ``/schema/openapi.json`` from a real server
process and sends generated requests with every check on: undocumented status codes,
responses that violate their schema, schema-valid requests that are refused, 5xx, and
the rest. It runs once with the admin token and once without, bounded in examples and
seeded, so the run is repeatable and stays within the suite's time budget. Any failure
of any check fails the test, with Schemathesis' own report as the message.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import ADMIN_TOKEN
from tests.support.banners import make_banner_sync
from tests.support.server import ServerProcess

CONFIG = Path(__file__).parents[1] / "schemathesis.toml"
MAX_EXAMPLES = 30
SEED = 20261130


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("contract")
    with ServerProcess(
        f"sqlite:///{tmp / 'contract.db'}",
        tmp / "server.log",
        env={"BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN},
    ) as srv:
        for i in range(3):  # something to find, so not every read is a 404
            make_banner_sync(srv.url, i, name=f"contract {i}")
        yield srv


def schemathesis(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.url}/schema/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--request-timeout",
        "10",
        "--no-color",
        *args,
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def summary(result: subprocess.CompletedProcess[str]) -> str:
    found = re.findall(r"Test cases:\s*\n\s*(.+)", result.stdout)
    return found[-1].strip() if found else "(no summary)"


@pytest.mark.parametrize("token", [True, False], ids=["admin", "anonymous"])
def test_the_server_keeps_its_openapi_contract(server: ServerProcess, token: bool) -> None:
    args = ("-H", f"Authorization: Bearer {ADMIN_TOKEN}") if token else ()
    result = schemathesis(server, *args)
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert "generated" in summary(result), report
    assert result.returncode == 0, f"{summary(result)}\n{report}"
    assert "Traceback" not in Path(server.log_path).read_text()
