"""The spool rows of ``/ops``: the state read off the figures, every worker's row."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from bannertrack.bootstrap.workers import WorkerBoard, WorkerFigures
from bannertrack.dashboard.spool_panel import ago, spool_rows, spool_state
from bannertrack.models import SpoolStats

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def stats(**changes: object) -> SpoolStats:
    base = SpoolStats(
        batches=0,
        clicks=0,
        impressions=0,
        oldest_age_s=0.0,
        bytes=0,
        max_bytes=1000,
        spooled_clicks=0,
        replayed_clicks=0,
        rejected_batches=0,
        database_down=False,
        last_replay_at=None,
    )
    return msgspec.structs.replace(base, **changes)


def test_the_state_is_read_off_the_figures() -> None:
    assert spool_state(stats()) == "healthy"
    assert spool_state(stats(database_down=True)) == "spooling"
    assert spool_state(stats(database_down=True, batches=3, clicks=40)) == "spooling"
    assert spool_state(stats(batches=3, clicks=40)) == "replaying"


def test_ages_read_short() -> None:
    assert [ago(s) for s in (0.42, 42, 185, 7500)] == ["0.4 s", "42 s", "3 min", "2 h 5 min"]


def test_every_worker_with_a_spool_has_a_row_this_one_first() -> None:
    other = WorkerFigures(
        pid=7,
        written_at=0.0,
        cache=None,
        exposition="",
        spool=stats(batches=2, clicks=30, oldest_age_s=75.0, database_down=True),
    )
    no_spool = WorkerFigures(pid=8, written_at=0.0, cache=None, exposition="")
    own = stats(last_replay_at=NOW - timedelta(seconds=12), replayed_clicks=5)
    rows = spool_rows(3, own, [other, no_spool], NOW)
    assert [(r.pid, r.this_worker, r.state) for r in rows] == [
        (3, True, "healthy"),
        (7, False, "spooling"),
    ]
    assert (rows[0].oldest, rows[0].last_replay) == ("", "12 s")
    assert (rows[1].oldest, rows[1].last_replay) == ("1 min", "")
    assert spool_rows(3, None, [no_spool], NOW) == []
    assert spool_rows(3, stats(bytes=995), [], NOW)[0].full


async def test_another_workers_spool_travels_in_its_snapshot(tmp_path: Path) -> None:
    other = os.getppid()  # a live process that is not this one
    sent = WorkerFigures(
        pid=other,
        written_at=100.0,
        cache=None,
        exposition="",
        spool=stats(batches=1, clicks=4, last_replay_at=NOW),
    )
    (tmp_path / f"{other}.json").write_bytes(msgspec.json.encode(sent))
    board = WorkerBoard(
        tmp_path,
        lambda: WorkerFigures(pid=os.getpid(), written_at=100.0, cache=None, exposition=""),
        clock=lambda: 100.5,
    )
    assert [f.spool for f in await board.others()] == [sent.spool]
