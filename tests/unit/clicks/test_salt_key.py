"""The salt key: sealing, the key file's creation and the errors a missing key gives."""

from __future__ import annotations

import logging
import secrets
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from bannertrack.cli import main
from bannertrack.clicks.salt_key import (
    SaltKey,
    SaltKeyError,
    load_salt_key,
    read_or_create_key_file,
)

DAY = date(2026, 11, 30)


def test_sealing_is_per_key_and_day_and_undone_by_the_same_key_only() -> None:
    key, other = SaltKey(b"a" * 32), SaltKey(b"b" * 32)
    salt = secrets.token_bytes(32)
    sealed = key.seal(salt, DAY)
    assert sealed != salt and key.unseal(sealed, DAY) == salt
    assert other.unseal(sealed, DAY) != salt
    assert key.unseal(sealed, date(2026, 12, 1)) != salt
    assert len(key.check(DAY)) == 8 and key.check(DAY) != other.check(DAY)
    assert key.check(DAY) != key.check(date(2026, 12, 1))
    assert "a" * 8 not in repr(key)


def test_the_setting_wins_and_a_short_key_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "salt.key"
    key = load_salt_key("s" * 32, str(key_file))
    assert key.unseal(SaltKey(b"s" * 32).seal(b"\1" * 32, DAY), DAY) == b"\1" * 32
    assert not key_file.exists()
    with pytest.raises(SaltKeyError, match="at least 32"):
        load_salt_key("short", str(key_file))
    key_file.write_text("short\n")
    with pytest.raises(SaltKeyError, match="fewer than 32"):
        load_salt_key("", str(key_file))


def test_key_file_is_created_private_once_even_by_racing_processes(tmp_path: Path) -> None:
    path = tmp_path / "state" / "bannertrack" / "salt.key"
    start = threading.Barrier(8)

    def create() -> str:
        start.wait()
        return read_or_create_key_file(path)

    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: create(), range(8)))
    assert len(keys) == 1 and len(keys.pop()) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["salt.key"]  # no temporary left


def test_a_readable_key_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "salt.key"
    key = read_or_create_key_file(path)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="bannertrack"):
        assert read_or_create_key_file(path) == key
    assert "readable by other users" in caplog.text and key not in caplog.text


def test_api_refuses_to_start_without_a_usable_key(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    for env in (
        {"BANNERTRACK_SALT_KEY": "short"},
        {"BANNERTRACK_SALT_KEY": "", "BANNERTRACK_SALT_KEY_FILE": str(blocker / "salt.key")},
    ):
        env["BANNERTRACK_DATABASE_URL"] = f"sqlite:///{tmp_path / 'k.db'}"
        result = CliRunner().invoke(main, ["api"], env=env)
        assert result.exit_code == 1, result.output
        assert "salt key" in result.output and "Traceback" not in result.output
