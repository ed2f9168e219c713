"""What `bannertrack api` settles before granian starts: its settings and event loop."""

from __future__ import annotations

import importlib.util

import pytest
from granian.constants import Loops

from bannertrack.cli.serving import event_loop
from bannertrack.errors import InvalidInputError


def test_the_default_loop_is_named_not_left_to_granian() -> None:
    # granian's "auto" would take rloop or uvloop whenever either is installed.
    assert event_loop("asyncio") is Loops.asyncio


def test_uvloop_is_used_when_installed_and_refused_with_the_fix_when_not() -> None:
    if importlib.util.find_spec("uvloop") is not None:
        assert event_loop("uvloop") is Loops.uvloop
    else:
        with pytest.raises(InvalidInputError, match="pip install uvloop"):
            event_loop("uvloop")


@pytest.mark.parametrize("command", ["api", "migrate", "demo"])
def test_a_bad_setting_is_named_without_a_traceback(command: str) -> None:
    from click.testing import CliRunner

    from bannertrack.cli import main

    env = {"BANNERTRACK_HTTP_LOOP": "bogus", "BANNERTRACK_DB_TIMEOUT": "-1"}
    result = CliRunner().invoke(main, [command], env=env)
    assert result.exit_code == 1
    assert "BANNERTRACK_DB_TIMEOUT='-1': Input should be greater than 0" in result.stderr
    assert "BANNERTRACK_HTTP_LOOP='bogus'" in result.stderr
    assert "Traceback" not in result.stderr and result.exception is not None
    assert isinstance(result.exception, SystemExit)


def test_a_refused_secret_is_named_but_not_echoed() -> None:
    from bannertrack.config import load_settings

    for name in ("database_url", "admin_token", "salt_key"):
        with pytest.raises(InvalidInputError) as caught:
            load_settings(**{name: ["hunter2-secret"]})  # not a string: refused
        assert f"BANNERTRACK_{name.upper()}:" in str(caught.value)
        assert "hunter2" not in str(caught.value)
