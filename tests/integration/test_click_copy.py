"""The in-memory copy of the clicks stays equal to the table (``db/click_copy.py``), on
SQLite and PostgreSQL: clicks written after the load, a batch that commits after a later
one (PostgreSQL), a deleted banner, the row cap and retention, the lazy load.

Each check compares the copy's answer with the SQL one of the same moment.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from tests.integration.test_filtered_overview import NOW, START, copied, seed

from bannertrack.db import click_copy
from bannertrack.db.click_copy import ClickCopy
from bannertrack.db.engine import create_engine
from bannertrack.db.explorer import SqlExplorer
from bannertrack.db.repository import SqlRepository
from bannertrack.db.tables import clicks
from bannertrack.models import DIMENSIONS, ClickFacts, ClickFilter, ClickIn

DE = ClickFilter(values=(("country", "DE"),))
WEEK = (NOW - timedelta(days=3), NOW, "day")


async def _same(memory: SqlExplorer, sql: SqlExplorer, f: ClickFilter = DE) -> int:
    start, end, interval = WEEK
    got = await memory.overview(f, start, end, interval, DIMENSIONS, 10, 5, "valid")  # type: ignore[arg-type]
    want = await sql.overview(f, start, end, interval, DIMENSIONS, 10, 5, "valid")  # type: ignore[arg-type]
    assert got == want
    assert got is not None
    return got.totals.total_clicks


def _click(banner_id: int, country: str = "DE", seconds: int = 0) -> ClickIn:
    return ClickIn(
        banner_id=banner_id,
        occurred_at=NOW - timedelta(hours=1, seconds=seconds),
        visitor=f"late{seconds}",
        facts=ClickFacts(country=country, device="desktop"),
    )


async def test_catches_up_and_drops_a_deleted_banner(
    sql_repo: SqlRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(click_copy, "CATCH_UP", 3)  # seven new clicks: three reads
    ids = await seed(sql_repo)
    sql = SqlExplorer(sql_repo.engine, retention_days=400, clock=lambda: NOW)
    memory = copied(sql_repo)
    assert memory.copy is not None
    await memory.copy.load()
    before = await _same(memory, sql)
    await sql_repo.record_clicks([_click(ids[0], seconds=s) for s in range(7)])
    assert await _same(memory, sql) == before + 7
    assert memory.copy.clicks == 507
    assert await sql_repo.delete_banner(ids[0])
    after = await _same(memory, sql)
    assert after < before
    assert await _same(memory, sql, ClickFilter(values=(("device", "desktop"),))) > 0


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite commits in id order
@pytest.mark.parametrize("follow", [True, False], ids=["gaps-followed", "negative-control"])
async def test_a_batch_committed_after_a_later_one_is_counted(
    sql_repo: SqlRepository, follow: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await seed(sql_repo)
    sql = SqlExplorer(sql_repo.engine, retention_days=400, clock=lambda: NOW)
    # No patience at all: the gap is kept only because its transaction is still open.
    memory = copied(sql_repo, gap_patience=0.0)
    assert memory.copy is not None
    if not follow:
        monkeypatch.setattr(memory.copy, "_note_gaps", lambda ids, horizon: True)
    await memory.copy.load()
    before = await _same(memory, sql)
    late = _click(ids[1], seconds=99)
    async with sql_repo.engine.connect() as slow:
        await slow.begin()
        await slow.execute(
            insert(clicks).values(
                banner_id=late.banner_id,
                occurred_at=late.occurred_at,
                country="DE",
                device="desktop",
            )
        )
        await sql_repo.record_clicks([_click(ids[2], seconds=s) for s in range(3)])
        assert await _same(memory, sql) == before + 3  # the open insert holds a gap
        assert memory.copy.stats().gaps == (1 if follow else 0)
        await slow.commit()
    start, end, _ = WEEK
    want = await sql.range_totals(DE, start, end)
    got = await memory.range_totals(DE, start, end)
    assert want is not None and want.total_clicks == before + 4
    if follow:
        assert got == want
        assert memory.copy.stats().gaps == 0, memory.copy._gaps
    else:  # without gaps the late click is missed
        assert got is not None and got.total_clicks == before + 3


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_rolled_back_id_is_given_up_once_its_transaction_ended(
    sql_repo: SqlRepository,
) -> None:
    ids = await seed(sql_repo)
    sql = SqlExplorer(sql_repo.engine, retention_days=400, clock=lambda: NOW)
    memory = copied(sql_repo, gap_patience=0.0)
    assert memory.copy is not None
    await memory.copy.load()
    async with sql_repo.engine.connect() as slow:
        await slow.begin()
        await slow.execute(insert(clicks).values(banner_id=ids[0], occurred_at=NOW, country="DE"))
        await sql_repo.record_clicks([_click(ids[2])])
        await _same(memory, sql)
        await _same(memory, sql)
        assert memory.copy.stats().gaps == 1  # still running: kept, however old
        await slow.rollback()
    await _same(memory, sql)
    assert memory.copy.stats().gaps == 0


async def test_the_row_cap_leaves_older_days_to_sql(sql_repo: SqlRepository) -> None:
    await seed(sql_repo)
    sql = SqlExplorer(sql_repo.engine, retention_days=400, clock=lambda: NOW)
    memory = copied(sql_repo, rows=100)
    assert memory.copy is not None
    await memory.copy.load()
    floor = memory.copy.floor
    assert floor is not None and floor > START and floor.hour == 0
    assert 0 < memory.copy.clicks <= 100
    recent = (floor, NOW)
    assert await memory.range_totals(DE, *recent) == await sql.range_totals(DE, *recent)
    # Refused for its range before any catch-up: the connection is not even used.
    assert await memory.copy.read(_Unused(), START, lambda cols: 1) is None  # type: ignore[arg-type]
    await _same(memory, sql)  # the three days reach below the floor: SQL answers


class _Unused:
    async def execute(self, *_: object) -> object:
        raise AssertionError("a refused read caught up")


async def test_retention_floor_and_the_lazy_load(sql_repo: SqlRepository) -> None:
    await seed(sql_repo)
    sql = SqlExplorer(sql_repo.engine, retention_days=1, clock=lambda: NOW)
    memory = copied(sql_repo, retention_days=1)
    assert memory.copy is not None
    assert not memory.copy.ready
    day = (NOW - timedelta(hours=5), NOW)
    assert await memory.range_totals(DE, *day) == await sql.range_totals(DE, *day)  # SQL
    deadline = time.monotonic() + 30
    while not memory.copy.ready:
        assert time.monotonic() < deadline, "the copy did not load in the background"
        await asyncio.sleep(0.02)
    floor = memory.copy.floor
    assert floor == (NOW - timedelta(days=1)).replace(hour=0) + timedelta(days=1)
    assert await memory.range_totals(DE, *day) == await sql.range_totals(DE, *day)
    await memory.copy.stop()


async def test_growth_past_the_cap_and_retention_raise_the_floor(sql_repo: SqlRepository) -> None:
    ids = await seed(sql_repo)
    now = [NOW]
    sql = SqlExplorer(sql_repo.engine, retention_days=4, clock=lambda: now[0])
    memory = copied(sql_repo, retention_days=4, rows=560, clock=lambda: now[0])
    assert memory.copy is not None
    await memory.copy.load()
    assert memory.copy.floor == START  # the first midnight after NOW - 4 days
    assert memory.copy.clicks == 500
    await sql_repo.record_clicks([_click(ids[0], seconds=s) for s in range(80)])
    await _same(memory, sql)  # 580 clicks: over the cap, the oldest day leaves
    floor = memory.copy.floor
    assert floor is not None and floor > START and floor.hour == 0
    assert memory.copy.clicks <= 560 - 560 // 8
    recent = (floor, NOW)
    assert await memory.range_totals(DE, *recent) == await sql.range_totals(DE, *recent)
    assert floor == START + timedelta(days=1)  # a day's clicks made room
    now[0] = NOW + timedelta(days=2)  # retention moves the floor on
    later = (now[0] - timedelta(hours=30), now[0])
    assert await memory.range_totals(DE, *later) == await sql.range_totals(DE, *later)
    assert memory.copy.floor == START + timedelta(days=2)
    assert memory.copy.clicks < 560 - 560 // 8
    assert await memory.range_totals(DE, *recent) == await sql.range_totals(DE, *recent)  # SQL


@pytest.mark.parametrize("backend", ["sqlite"])  # the failing database is a missing directory
async def test_a_failed_load_is_tried_again_later_not_at_every_read(
    sql_repo: SqlRepository, tmp_path: Path
) -> None:
    broken = create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")
    copy = ClickCopy(broken, rows=100, retention_days=400, gap_patience=30.0, clock=lambda: NOW)
    try:
        async with sql_repo.engine.connect() as conn:
            assert await copy.read(conn, START, lambda cols: 1) is None
            deadline = time.monotonic() + 30
            while copy._loader.running:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            assert not copy.ready and copy._retry_at > time.monotonic()
            assert await copy.read(conn, START, lambda cols: 1) is None
            assert not copy._loader.running  # not started again before RETRY_AFTER
    finally:
        await copy.stop()
        await broken.dispose()
