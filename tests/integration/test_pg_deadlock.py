"""Deadlocks on PostgreSQL: a victim is written again (never lost, never a 500), and the
writers keep one lock order so that there are no victims.

The first tests make a real deadlock: a second connection takes ``banner_totals``' row
of the banner, the writer waits for it (holding the banner ``FOR KEY SHARE``), and the
second connection then asks for the banner ``FOR UPDATE``. The writer's session detects
the deadlock (its ``deadlock_timeout`` is short, the other's long, so the writer is the
victim) and is cancelled with 40P01; its transaction stored nothing (``db.errors`` maps
it to ``TransientError``). A one-click batch used to be taken for a click the database
rejects: its tracking link answered 500.

The last ones hold the lock order (``db.click_plan``'s docstring lists it): a writer held
at one lock holds nothing that comes later (a ``NOWAIT`` probe), or does not wait at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection
from tests.support.pg_locks import waiting_for_locks
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
            await wait_until(waiting_for_locks(repo.engine, 1), timeout=5)
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
        await wait_until(waiting_for_locks(repo.engine, 1), timeout=5)
        await close_the_cycle(other, b)
        assert await asyncio.wait_for(flush, 5) == 0  # cancelled: nothing written...
        assert batcher.pending == 3 and batcher.flushes_failed == 1  # ...and kept,
        assert spool.batches == 0 and not state.down  # not spooled: no outage
        await other.rollback()
    assert await batcher.flush() == 3
    await spool.close()
    assert (await repo.impressions([b]))[b] == 4  # neither lost nor counted twice


# -- the lock order (click_plan's docstring): waiters that could not close a cycle ------


async def test_an_in_doubt_replay_takes_the_totals_after_the_visitor_row(
    repo: SqlRepository,
) -> None:
    """A click batch holds its visitor rows, then waits for ``banner_totals``; an in-doubt
    replay that locked the totals first (to wait for a running write) then waited for the
    visitor row: a deadlock. Held at the visitor row, the replay must not hold the totals."""
    b = await new_banner(repo)
    await repo.record_clicks([click(b, "v")])  # the visitor's row and the totals row exist
    later = ClickIn(
        banner_id=b, occurred_at=NOW + timedelta(hours=1), visitor="v", user_agent="agent"
    )
    async with repo.engine.connect() as other, repo.engine.connect() as probe:
        row = "SELECT 1 FROM visitor_clicks WHERE banner_id = :b AND visitor = 'v' FOR UPDATE"
        assert (await other.execute(text(row), {"b": b})).all() == [(1,)]
        replay = asyncio.create_task(repo.replay_clicks([("k", [later])], in_doubt=True))
        await wait_until(waiting_for_locks(repo.engine, 1), timeout=5)
        # NOWAIT: raises at once if the waiting replay holds the totals row.
        held = "SELECT 1 FROM banner_totals WHERE banner_id = :b FOR UPDATE NOWAIT"
        assert (await probe.execute(text(held), {"b": b})).all() == [(1,)]
        await probe.rollback()
        assert not replay.done()
        await other.rollback()
    assert await asyncio.wait_for(replay, 5) == [True]
    stats = await repo.click_stats(b)
    assert stats is not None and stats.total_clicks == 2


async def test_an_in_doubt_replay_waits_for_a_running_write_of_its_banners(
    repo: SqlRepository,
) -> None:
    b = await new_banner(repo)
    stray = ClickIn(banner_id=b, occurred_at=NOW, visitor="v", user_agent="agent")
    async with repo.engine.connect() as write:
        # What every click batch holds till it ends (the write that may yet commit).
        share = "SELECT 1 FROM banners WHERE id = :b FOR KEY SHARE"
        assert (await write.execute(text(share), {"b": b})).all() == [(1,)]
        replay = asyncio.create_task(repo.replay_clicks([("k", [stray])], in_doubt=True))
        await wait_until(waiting_for_locks(repo.engine, 1), timeout=5)
        assert not replay.done()
        await write.rollback()
    assert await asyncio.wait_for(replay, 5) == [True]


async def test_forgetting_visitors_skips_a_row_a_click_batch_holds(repo: SqlRepository) -> None:
    """Retention deleted visitor rows in scan order, waiting for each: a click batch takes
    them in key order (a deadlock), and the row it waited for was deleted after the batch
    moved its window. Now it skips what a batch holds; a later run takes it."""
    b = await new_banner(repo)
    await repo.record_clicks([click(b, "held"), click(b, "free")])
    after_all = NOW + timedelta(days=365)
    async with repo.engine.connect() as batch:
        row = "SELECT 1 FROM visitor_clicks WHERE banner_id = :b AND visitor = 'held' FOR UPDATE"
        assert (await batch.execute(text(row), {"b": b})).all() == [(1,)]
        assert await asyncio.wait_for(repo.purge_visitors(after_all, 100), 5) == 1
        await batch.rollback()
    assert await repo.purge_visitors(after_all, 100) == 1
    async with repo.engine.connect() as conn:
        left = await conn.execute(text("SELECT count(*) FROM visitor_clicks"))
        assert left.scalar_one() == 0
