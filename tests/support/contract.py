"""Schemathesis against a real server process: the set-up the two contract tests share.

The admin and the anonymous run are two test files, not one parametrized test, so that the
suite's two worker processes (pytest-xdist, ``--dist loadfile``) run them side by side:
they are the longest single tests of the suite (about 85 s of generated requests with the
token, 40 s without).
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


def contract_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with three banners, so not every read is a 404."""
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


def assert_contract_kept(server: ServerProcess, *, token: bool) -> None:
    """Schemathesis' every check passes, with the admin token or without."""
    # Without a token every request to an admin-only operation gets the same 401, however
    # its body and parameters were generated: about half this run's time for one answer,
    # which tests/integration/test_openapi.py asks of each guarded operation instead. The
    # two ingest operations (an ingest or the admin token) stay in.
    anonymous = ("--exclude-by", "/security/0/AdminToken == []")
    args = ("-H", f"Authorization: Bearer {ADMIN_TOKEN}") if token else anonymous
    result = schemathesis(server, *args)
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert "generated" in summary(result), report
    assert result.returncode == 0, f"{summary(result)}\n{report}"
    assert "Traceback" not in Path(server.log_path).read_text()
