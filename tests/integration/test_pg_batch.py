"""PostgreSQL's click batch (``db.pg_clicks``): one statement or two, the same guarantees.

A batch in which a visitor clicks a banner twice locks its banners and upserts its
visitor rows in one statement, then inserts the raw clicks with every rollup in a second
one; any other batch is one statement (tests/integration/test_pg_one_statement.py holds
the two to the same results). What these tests hold it to: the statement count, a banner
deleted meanwhile skipped (never a failed batch), statement timeouts and their mapping
to ``DatabaseUnavailableError``, no deadlock between two writers (nor with an impression
flush), and first/last click times from batches out of order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from tests.support.pg_locks import waiting_for_locks
from tests.support.waiting import wait_until

from bannertrack.db.engine import DbTimeouts
from bannertrack.db.repository import SqlRepository
from bannertrack.db.tables import (
    banner_totals,
    click_breakdowns,
    click_minutes,
    clicks,
    visitor_clicks,
)
from bannertrack.errors import DatabaseUnavailableError
from bannertrack.models import BannerCreate, ClickFacts, ClickIn, ImpressionCount, PlacementCreate

NOW = datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def backend() -> str:
    return "postgresql"


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[SqlRepository]:
    r = SqlRepository.from_url(database_url, timeouts=DbTimeouts(statement=1.0))
    try:
        yield r
    finally:
        await r.close()


def banner(name: str) -> BannerCreate:
    return BannerCreate(
        name=name, image_url="https://cdn.example.com/a.png", target_url="https://a.example/"
    )


def click(banner_id: int, i: int, at: datetime = NOW) -> ClickIn:
    return ClickIn(
        banner_id=banner_id,
        occurred_at=at,
        visitor=f"visitor-{i % 7}",
        user_agent="agent",
        bot=i % 11 == 0,
        facts=ClickFacts(country=("DE", "SE", "FR")[i % 3], referrer_host=f"r{i % 5}.example"),
    )


async def test_a_batch_is_one_statement_or_two(repo: SqlRepository) -> None:
    ids = [(await repo.create_banner(banner(f"b{i}"))).id for i in range(3)]
    await repo.record_clicks([click(ids[i % 3], i) for i in range(30)])  # learns the day
    before = repo.queries.count
    recorded = await repo.record_clicks([click(ids[i % 3], i) for i in range(50)])
    assert all(r is not None for r in recorded)
    # Visitors click twice: one for the banner check and the visitor upsert, one for
    # clicks and every rollup (BEGIN and COMMIT are not statements the counter sees).
    assert repo.queries.count - before == 2
    before = repo.queries.count
    recorded = await repo.record_clicks([click(ids[i % 3], i) for i in range(21)])
    assert all(r is not None for r in recorded)
    assert repo.queries.count - before == 1


async def test_a_banner_deleted_meanwhile_is_skipped(repo: SqlRepository) -> None:
    doomed = (await repo.create_banner(banner("doomed"))).id
    kept = (await repo.create_banner(banner("kept"))).id
    batch = [click(b, i) for i in range(20) for b in (doomed, kept)]
    async with repo.engine.connect() as other:
        await other.execute(text("DELETE FROM banners WHERE id = :b"), {"b": doomed})
        # The delete holds the banner row: the batch waits at its banner check.
        task = asyncio.create_task(repo.record_clicks(batch))
        await wait_until(waiting_for_locks(repo.engine, 1), timeout=5)
        assert not task.done()
        await other.commit()
    recorded = await asyncio.wait_for(task, 5)
    assert [r is None for r in recorded] == [c.banner_id == doomed for c in batch]
    stats = await repo.click_stats(kept)
    assert stats is not None and stats.total_clicks == 20
    async with repo.engine.connect() as conn:
        for table in (clicks, visitor_clicks, click_breakdowns):
            owners = (await conn.execute(select(table.c.banner_id).distinct())).scalars()
            assert set(owners) == {kept}, table.name


@pytest.mark.parametrize("twice", [False, True], ids=["one statement", "two statements"])
async def test_a_banner_deleted_while_its_batch_is_written_leaves_no_row(
    repo: SqlRepository, twice: bool
) -> None:
    """The tables a batch inserts into have no foreign key: the banner's delete clears
    them, after waiting for the batch that holds the banner, whose rows it then sees."""
    doomed = (await repo.create_banner(banner("doomed"))).id
    kept = (await repo.create_banner(banner("kept"))).id
    # Each visitor twice when twice: the two-statement batch.
    batch = [
        ClickIn(
            banner_id=b,
            occurred_at=NOW,
            visitor=f"v{i // (1 + twice)}",
            facts=ClickFacts(country="SE"),
        )
        for i in range(12)
        for b in (doomed, kept)
    ]
    async with repo.engine.connect() as other:
        # The batch locks its banners, then waits for this row at its rollups.
        hold = "SELECT 1 FROM banner_totals WHERE banner_id = :b FOR UPDATE"
        await other.execute(text(hold), {"b": doomed})
        written = asyncio.create_task(repo.record_clicks(batch))
        await wait_until(waiting_for_locks(repo.engine, 1), timeout=5)
        deleted = asyncio.create_task(repo.delete_banner(doomed))
        await wait_until(waiting_for_locks(repo.engine, 2), timeout=5)
        assert not written.done() and not deleted.done()
        await other.rollback()
    recorded = await asyncio.wait_for(written, 5)
    assert all(r is not None for r in recorded)  # the batch held the banner first
    assert await asyncio.wait_for(deleted, 5)
    async with repo.engine.connect() as conn:
        for table in (clicks, visitor_clicks, click_minutes, click_breakdowns, banner_totals):
            owners = (await conn.execute(select(table.c.banner_id).distinct())).scalars()
            assert set(owners) == {kept}, table.name
    stats = await repo.click_stats(kept)
    assert stats is not None and stats.total_clicks == 12


@pytest.mark.parametrize("twice", [False, True], ids=["one statement", "two statements"])
@pytest.mark.parametrize(
    "hold",
    [
        # the visitor upsert waits on a visitor row, the rollups on the banner's totals row
        "SELECT 1 FROM visitor_clicks WHERE banner_id = :b FOR UPDATE",
        "SELECT 1 FROM banner_totals WHERE banner_id = :b FOR UPDATE",
    ],
)
async def test_a_statement_past_its_timeout_is_unavailable_and_stores_nothing(
    repo: SqlRepository, hold: str, twice: bool
) -> None:
    """The server cancels the statement (its statement_timeout): rolled back, even when
    the lock it waited on is released at once after the client heard of the timeout."""
    b = (await repo.create_banner(banner("b"))).id
    await repo.record_clicks([click(b, 1)])
    late = NOW + timedelta(hours=2)
    # The same visitor twice in a batch: the two-statement batch.
    batch = [click(b, 1, late), click(b, 1, late + timedelta(minutes=1))][: 1 + twice]
    async with repo.engine.connect() as other:
        await other.execute(text(hold), {"b": b})
        with pytest.raises(DatabaseUnavailableError):
            await repo.record_clicks(batch)
        await other.rollback()
    # Nothing of the failed batch stayed, and the pool's connections work again.
    recorded = await repo.record_clicks([click(b, 1, NOW + timedelta(hours=3))])
    assert recorded[0] is not None and not recorded[0].repeat
    stats = await repo.click_stats(b)
    assert stats is not None and (stats.total_clicks, stats.valid_clicks) == (2, 2)


async def test_two_writers_never_deadlock_and_count_exactly(database_url: str) -> None:
    """Two instances write batches over the same banners, visitors and breakdown values,
    each batch in its own order: rows are locked in one order, so neither fails."""
    a, b = SqlRepository.from_url(database_url), SqlRepository.from_url(database_url)
    try:
        ids = [(await a.create_banner(banner(f"b{i}"))).id for i in range(4)]
        sent = 0
        for round_ in range(15):
            batches = [
                [click(ids[(i + k) % 4], i + round_, NOW + timedelta(seconds=i)) for i in range(40)]
                for k in range(4)
            ]
            batches[1].reverse()
            batches[3].reverse()
            results = await asyncio.gather(
                a.record_clicks(batches[0]),
                b.record_clicks(batches[1]),
                a.record_clicks(batches[2]),
                b.record_clicks(batches[3]),
            )
            assert all(r is not None for rs in results for r in rs)
            sent += sum(len(x) for x in batches)
        async with a.engine.connect() as conn:
            stored = (await conn.execute(select(func.count()).select_from(clicks))).scalar_one()
            by_dim = (
                await conn.execute(
                    select(func.sum(click_breakdowns.c.clicks)).where(
                        click_breakdowns.c.dimension == "referrer"
                    )
                )
            ).scalar_one()
        totals = [await a.click_stats(i) for i in ids]
        assert stored == sent == by_dim == sum(t.total_clicks for t in totals if t)
    finally:
        await a.close()
        await b.close()


async def test_an_impression_flush_locks_totals_before_the_placement_rollup(
    repo: SqlRepository,
) -> None:
    """A batch of placement clicks locks ``banner_totals`` and then ``placement_minutes``;
    an impression flush that took them the other way round deadlocked with it (seen as a
    tracking link's 500 in tests/integration/test_placements_api.py on a busy machine).
    Held at its totals row, the flush must not hold the placement's row yet."""
    b = (await repo.create_banner(banner("b"))).id
    p = (await repo.create_placement(PlacementCreate(name="top"))).id
    shown = [ImpressionCount(banner_id=b, minute=NOW, count=1, placement_id=p)]
    await repo.record_impressions(shown)  # both rows exist: a flush updates (locks) them
    async with repo.engine.connect() as other, repo.engine.connect() as probe:
        await other.execute(
            text("SELECT 1 FROM banner_totals WHERE banner_id = :b FOR UPDATE"), {"b": b}
        )
        flush = asyncio.create_task(repo.record_impressions(shown))
        await wait_until(waiting_for_locks(repo.engine, 1), timeout=5)
        # NOWAIT: raises at once if the waiting flush holds the placement's row.
        held = "SELECT 1 FROM placement_minutes WHERE placement_id = :p FOR UPDATE NOWAIT"
        assert (await probe.execute(text(held), {"p": p})).all() == [(1,)]
        await probe.rollback()
        assert not flush.done()
        await other.rollback()
    await asyncio.wait_for(flush, 5)
    stats = await repo.placement_stats(p, NOW - timedelta(hours=1), NOW + timedelta(hours=1))
    assert stats is not None and stats.impressions == 2


async def test_first_and_last_click_from_batches_out_of_order(repo: SqlRepository) -> None:
    b = (await repo.create_banner(banner("b"))).id
    t = [NOW + timedelta(minutes=m) for m in range(5)]
    await repo.record_clicks([click(b, 1, t[2])])
    await repo.record_clicks([click(b, 2, t[3]), click(b, 3, t[0]), click(b, 4, t[1])])
    await repo.record_clicks([click(b, 5, t[1])])
    stats = await repo.click_stats(b)
    assert stats is not None
    assert (stats.first_click_at, stats.last_click_at) == (t[0], t[3])
