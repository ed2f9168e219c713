"""``WorkerBoard``: the other workers' snapshots, without the dead and the silent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec

from bannertrack.bootstrap.workers import STALE_AFTER, WorkerBoard, WorkerFigures

NOW = 1_000_000.0


def figures(pid: int, written_at: float = NOW) -> WorkerFigures:
    return WorkerFigures(pid=pid, written_at=written_at, cache=None, exposition="")


def board(tmp_path: Path) -> WorkerBoard:
    return WorkerBoard(tmp_path, lambda: figures(os.getpid()), clock=lambda: NOW)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def put(directory: Path, f: WorkerFigures) -> Path:
    path = directory / f"{f.pid}.json"
    path.write_bytes(msgspec.json.encode(f))
    return path


async def test_another_live_workers_snapshot_is_read_and_its_own_is_not(tmp_path: Path) -> None:
    b = board(tmp_path)
    await b.publish()
    parent = put(tmp_path, figures(os.getppid(), NOW - 0.5))
    assert (tmp_path / f"{os.getpid()}.json").exists()
    assert [f.pid for f in await b.others()] == [os.getppid()]
    assert parent.exists()


async def test_a_dead_workers_file_is_ignored_and_removed(tmp_path: Path) -> None:
    path = put(tmp_path, figures(dead_pid()))
    assert await board(tmp_path).others() == []
    assert not path.exists()


async def test_a_silent_workers_snapshot_no_longer_counts(tmp_path: Path) -> None:
    put(tmp_path, figures(os.getppid(), NOW - STALE_AFTER - 0.1))
    assert await board(tmp_path).others() == []


async def test_a_foreign_or_torn_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "1.json").write_text('{"pid": 1, "writ')
    assert await board(tmp_path).others() == []


async def test_leaving_removes_its_own_file(tmp_path: Path) -> None:
    own = tmp_path / f"{os.getpid()}.json"
    async with board(tmp_path):
        assert own.exists()
    assert not own.exists()
