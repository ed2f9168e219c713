"""The README describes what is built: its settings table and its test command."""

from __future__ import annotations

import re
from pathlib import Path

from bannertrack.config import settings_table

ROOT = Path(__file__).resolve().parents[2]


def test_readme_settings_table_matches_the_code() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- settings:start -->\n(.*?)\n<!-- settings:end -->", readme, re.S)
    assert block, "README lost its settings markers"
    assert block.group(1) == settings_table(), (
        "README settings table is stale: regenerate it with `python -m bannertrack.config`"
    )


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = re.findall(r"```sh\n(?:#.*\n)?(.+)\n```", readme)
    assert len(commands) >= 2
    test_command = commands[1]
    assert "pytest" in test_command
    # CI adds only -q to pip for quieter logs.
    assert test_command.replace("pip install -e", "pip install -q -e") in ci
