"""The docs describe what is built: the README's settings table and test command, and
the tree docs/architecture.md draws."""

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


def _drawn_top_level(architecture: str) -> list[str]:
    """The names the tree under "## The tree" draws at the package's top level."""
    section = architecture.split("## The tree", 1)[1]
    block = re.search(r"```\nsrc/bannertrack/\n(.*?)\n```", section, re.S)
    assert block, "docs/architecture.md lost its tree"
    return re.findall(r"^  (\S+)", block.group(1), re.M)


def test_architecture_draws_the_package_as_it_is() -> None:
    package = ROOT / "src" / "bannertrack"
    on_disk = {f"{p.name}/" for p in package.iterdir() if any(p.glob("*.py"))} | {
        p.name for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")
    }
    drawn = _drawn_top_level((ROOT / "docs" / "architecture.md").read_text())
    assert len(drawn) == len(set(drawn))
    assert set(drawn) == on_disk


def test_the_tree_reader_takes_only_the_top_level() -> None:
    text = "## The tree\n\n```\nsrc/bannertrack/\n  cache/     engine\n    _x.py\n  a.py  y\n```\n"
    assert _drawn_top_level(text) == ["cache/", "a.py"]
