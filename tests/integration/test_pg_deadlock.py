"""Deadlocks on PostgreSQL: a victim is written again, never lost, never a 500.

The tests make a real deadlock: a second connection takes ``banner_totals``' row
of the banner, the writer waits for it (holding the banner ``FOR KEY SHARE``), and the
second connection then asks for the banner ``FOR UPDATE``. The writer's session detects
the deadlock (its ``deadlock_timeout`` is short, the other's long, so the writer is the
victim) and is cancelled with 40P01; its transaction stored nothing (``db.errors`` maps
it to ``TransientError``). A one-click batch used to be taken for a click the database
rejects: its tracking link answered 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from tests.support.waiting import wait_until

from bannertrack.clicks.impressions import ImpressionBatcher
from bannertrack.clicks.ingest import ClickIngest
from bannertrack.clicks.spool import Spool
from bannertrack.db.engine import DbTimeouts
from bannertrack.db.repository import SqlRepository
from bannertrack.models import BannerCreate, ClickIn, ImpressionCount, RecordedClick
from bannertrack.outage import DatabaseState

NOW = datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[SqlRepository]:
    r = SqlRepository.from_url(database_url, timeouts=DbTimeouts(statement=10.0))
    try:
        # The writer's sessions find a deadlock after 50 ms (the default is 1 s), well
        # within their statement timeout: a timeout would be an outage's 503, not this.
        async with r.engine.begin() as conn:
            name = (await conn.execute(text("SELECT current_database()"))).scalar_one()
            await conn.execute(text(f"ALTER DATABASE \"{name}\" SET deadlock_timeout = '50ms'"))
        await r.engine.dispose()  # new sessions take the setting
        yield r
    finally:
        await r.close()


def waiting_for_locks(repo: SqlRepository, n: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        sql = (
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        async with repo.engine.connect() as conn:
            return int((await conn.execute(text(sql))).scalar_one()) >= n

    return check


async def new_banner(repo: SqlRepository) -> int:
    data = BannerCreate(
        name="b", image_url="https://cdn.example.com/a.png", target_url="https://a.example/"
    )
    return (await repo.create_banner(data)).id


def click(banner_id: int, visitor: str) -> ClickIn:
    return ClickIn(banner_id=banner_id, occurred_at=NOW, visitor=visitor, user_agent="agent")


async def hold_totals(conn: AsyncConnection, banner_id: int) -> None:
    # This session must not be the victim: it detects the deadlock only after 10 s.
    await conn.execute(text("SET deadlock_timeout = '10s'"))
    sql = "SELECT 1 FROM banner_totals WHERE banner_id = :b FOR UPDATE"
    assert (await conn.execute(text(sql), {"b": banner_id})).all() == [(1,)]


async def close_the_cycle(conn: AsyncConnection, banner_id: int) -> None:
    """Ask for the banner the waiting writer holds: a deadlock; returns once the
    writer's transaction is cancelled (its lock gone)."""
    sql = "SELECT 1 FROM banners WHERE id = :b FOR UPDATE"
    await asyncio.wait_for(conn.execute(text(sql), {"b": banner_id}), 5)


@pytest.mark.parametrize("spooled", [True, False], ids=["spool", "no-spool"])
async def test_a_one_click_batch_cancelled_by_a_deadlock_is_retried_and_answered(
    repo: SqlRepository, tmp_path: Path, spooled: bool
) -> None:
    b = await new_banner(repo)
    await repo.record_clicks([click(b, "earlier")])  # the totals row exists
    state = DatabaseState()
    spool = Spool(tmp_path, max_bytes=1_000_000) if spooled else None
    if spool is not None:
        await spool.open()
    # The live write is given long enough to meet the deadlock (not spooled for time).
    ingest = ClickIngest(repo, spool=spool, state=state, spool_after=30)
    await ingest.start()
    try:
        async with repo.engine.connect() as other:
            await hold_totals(other, b)
            answer = asyncio.create_task(ingest.record(click(b, "v")))
            await wait_until(waiting_for_locks(repo, 1), timeout=5)
            await close_the_cycle(other, b)
            # The retry now waits for this session's locks; it must not have failed.
            await wait_until(lambda: ingest.batches_retried >= 1, timeout=5)
            assert not answer.done()
            await other.rollback()
        recorded = await asyncio.wait_for(answer, 5)
    finally:
        await ingest.stop()
        if spool is not None:
            await spool.close()
    assert isinstance(recorded, RecordedClick) and recorded.banner_id == b
    assert ingest.batches_failed == 0 and ingest.clicks_written == 1
    assert ingest.clicks_spooled == 0 and not state.down  # no outage
    stats = await repo.click_stats(b)
    assert stats is not None and stats.total_clicks == 2


async def test_an_impression_flush_cancelled_by_a_deadlock_keeps_its_counts(
    repo: SqlRepository, tmp_path: Path
) -> None:
    b = await new_banner(repo)
    await repo.record_impressions([ImpressionCount(banner_id=b, minute=NOW, count=1)])
    state = DatabaseState()
    spool = Spool(tmp_path, max_bytes=1_000_000)
    await spool.open()
    batcher = ImpressionBatcher(repo, clock=lambda: NOW, spool=spool, state=state)
    for _ in range(3):
        batcher.add(b)
    async with repo.engine.connect() as other:
        await hold_totals(other, b)
        flush = asyncio.create_task(batcher.flush())
        await wait_until(waiting_for_locks(repo, 1), timeout=5)
        await close_the_cycle(other, b)
        assert await asyncio.wait_for(flush, 5) == 0  # cancelled: nothing written...
        assert batcher.pending == 3 and batcher.flushes_failed == 1  # ...and kept,
        assert spool.batches == 0 and not state.down  # not spooled: no outage
        await other.rollback()
    assert await batcher.flush() == 3
    await spool.close()
    assert (await repo.impressions([b]))[b] == 4  # neither lost nor counted twice
