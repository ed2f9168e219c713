"""The CLI's help lists every command with its whole description, and refuses a wrong
choice by listing the right ones."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from bannertrack.cli import main


def groups() -> list[tuple[list[str], click.Group]]:
    out: list[tuple[list[str], click.Group]] = [([], main)]
    out += [([n], c) for n, c in main.commands.items() if isinstance(c, click.Group)]
    return out


@pytest.mark.parametrize(("path", "group"), groups(), ids=lambda v: str(v))
def test_no_command_description_is_cut(path: list[str], group: click.Group) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    listing = result.output.split("Commands:", 1)[1]
    assert "..." not in listing, listing
    for name, command in group.commands.items():
        line = next(s for s in listing.splitlines() if s.strip().startswith(name + " "))
        assert command.get_short_help_str(limit=1000) in line, line


def test_a_wrong_namespace_lists_the_valid_ones() -> None:
    result = CliRunner().invoke(main, ["cache", "invalidate", "--namespace", "nope"])
    assert result.exit_code == 2
    for namespace in ("banner", "click_stats", "banner_stats", "top_banners", "breakdown"):
        assert f"'{namespace}'" in result.output
