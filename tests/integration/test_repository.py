"""The Repository contract, run over SQLite and a real PostgreSQL.

Every count is checked against clicks the test itself recorded, at chosen instants, so
the rollup arithmetic (whole minutes plus the partial edge minute) is exercised.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bannertrack.db.repository import SqlRepository
from bannertrack.models import BannerCreate, BannerUpdate, ClickFacts, ClickIn, ImpressionCount

NOW = datetime(2026, 11, 24, 12, 30, 17, 250_000, tzinfo=UTC)


def new_banner(i: int = 1, **kw: object) -> BannerCreate:
    return BannerCreate(
        name=f"banner {i}",
        image_url=f"https://cdn.example.com/{i}.png",
        target_url=f"https://shop.example.com/{i}",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[SqlRepository]:
    """A repository whose clock stands at ``NOW`` (banners' created and updated times)."""
    r = SqlRepository.from_url(database_url, clock=lambda: NOW)
    try:
        yield r
    finally:
        await r.close()


async def test_banner_crud(repo: SqlRepository) -> None:
    created = await repo.create_banner(new_banner(1, forward_query=False))
    assert created.id >= 1 and created.active and not created.forward_query
    assert created.created_at == NOW == created.updated_at
    assert await repo.get_banner(created.id) == created
    updated = await repo.update_banner(created.id, BannerUpdate(name="renamed", active=False))
    assert updated is not None
    assert (updated.name, updated.active, updated.image_url) == (
        "renamed",
        False,
        created.image_url,
    )
    assert await repo.update_banner(created.id + 1000, BannerUpdate(name="x")) is None
    assert await repo.delete_banner(created.id)
    assert not await repo.delete_banner(created.id)
    assert await repo.get_banner(created.id) is None
    assert await repo.click_stats(created.id) is None


async def test_ids_are_not_reused_after_delete(repo: SqlRepository) -> None:
    first = await repo.create_banner(new_banner(1))
    await repo.delete_banner(first.id)
    second = await repo.create_banner(new_banner(2))
    assert second.id > first.id


async def test_list_is_paged(repo: SqlRepository) -> None:
    ids = [(await repo.create_banner(new_banner(i))).id for i in range(7)]
    page = await repo.list_banners(offset=2, limit=3)
    assert page.total == 7
    assert [b.id for b in page.items] == ids[2:5]
    assert (page.offset, page.limit) == (2, 3)


async def test_stats_match_recorded_clicks(repo: SqlRepository) -> None:
    banner = await repo.create_banner(new_banner())
    other = await repo.create_banner(new_banner(2))
    rng = random.Random(7)
    # Offsets straddle the one-hour and 24-hour edges, within the same minute too.
    offsets = [rng.uniform(0, 3 * 86400) for _ in range(400)]
    offsets += [3599.9, 3600.1, 86399.9, 86400.1, 0.0]
    times = [NOW - timedelta(seconds=s) for s in offsets]
    for chunk in range(0, len(times), 97):
        results = await repo.record_clicks(
            [ClickIn(banner_id=banner.id, occurred_at=t) for t in times[chunk : chunk + 97]]
        )
        assert all(r is not None and r.banner_id == banner.id for r in results)
    await repo.record_clicks([ClickIn(banner_id=other.id, occurred_at=NOW)])

    stats = await repo.click_stats(banner.id)
    assert stats is not None
    assert stats.total_clicks == len(times)
    assert stats.clicks_last_hour == sum(1 for t in times if t >= NOW - timedelta(hours=1))
    assert stats.clicks_last_24h == sum(1 for t in times if t >= NOW - timedelta(days=1))
    assert stats.first_click_at == min(times)
    assert stats.last_click_at == max(times)

    with_stats = await repo.banner_with_stats(banner.id)
    assert with_stats is not None and with_stats.stats == stats and with_stats.banner == banner


async def test_stats_before_first_click(repo: SqlRepository) -> None:
    banner = await repo.create_banner(new_banner())
    stats = await repo.click_stats(banner.id)
    assert stats is not None
    assert (stats.total_clicks, stats.clicks_last_hour, stats.clicks_last_24h) == (0, 0, 0)
    assert stats.first_click_at is None and stats.last_click_at is None


async def test_click_on_missing_banner_is_refused_not_dropped_silently(
    repo: SqlRepository,
) -> None:
    banner = await repo.create_banner(new_banner())
    results = await repo.record_clicks(
        [
            ClickIn(banner_id=banner.id, occurred_at=NOW),
            ClickIn(banner_id=banner.id + 999, occurred_at=NOW),
            ClickIn(banner_id=banner.id, occurred_at=NOW),
        ]
    )
    assert results[1] is None
    assert results[0] is not None and results[2] is not None
    assert results[0].id != results[2].id
    stats = await repo.click_stats(banner.id)
    assert stats is not None and stats.total_clicks == 2


async def test_top_banners_order_and_counts(repo: SqlRepository) -> None:
    banners = [await repo.create_banner(new_banner(i)) for i in range(6)]
    counts = [3, 0, 9, 5, 9, 1]
    clicks = [
        ClickIn(banner_id=b.id, occurred_at=NOW - timedelta(minutes=n))
        for b, c in zip(banners, counts, strict=True)
        for n in range(c)
    ]
    random.Random(1).shuffle(clicks)
    await repo.record_clicks(clicks)
    top = await repo.top_banners(4)
    assert top.limit == 4
    got = [(t.banner.id, t.clicks) for t in top.items]
    # Most clicks first; ties by lower id.
    assert got == [(banners[2].id, 9), (banners[4].id, 9), (banners[3].id, 5), (banners[0].id, 3)]
    everyone = await repo.top_banners(100)
    assert len(everyone.items) == 6 and everyone.items[-1].clicks == 0


@pytest.mark.parametrize(("interval", "width"), [("minute", 60), ("hour", 3600), ("day", 86400)])
async def test_series_buckets_are_zero_filled_and_exact(
    repo: SqlRepository, interval: str, width: int
) -> None:
    banner = await repo.create_banner(new_banner())
    rng = random.Random(interval)
    span = {"minute": 90 * 60, "hour": 30 * 3600, "day": 9 * 86400}[interval]
    start, end = NOW - timedelta(seconds=span * 0.8), NOW - timedelta(seconds=span * 0.1)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    expected_ts = []
    ts = epoch + timedelta(seconds=((start - epoch).total_seconds() // width) * width)
    while ts <= end:
        expected_ts.append(ts)
        ts += timedelta(seconds=width)
    # Leave one bucket inside the range empty: it must come back as an explicit zero.
    hole = expected_ts[2]
    times = [NOW - timedelta(seconds=rng.uniform(0, span)) for _ in range(300)]
    times = [t for t in times if not hole <= t < hole + timedelta(seconds=width)]
    await repo.record_clicks([ClickIn(banner_id=banner.id, occurred_at=t) for t in times])

    series = await repo.click_series(banner.id, start, end, interval)  # type: ignore[arg-type]
    assert series is not None
    assert (series.from_, series.to, series.interval) == (start, end, interval)
    assert [p.ts for p in series.points] == expected_ts
    for p in series.points:
        want = sum(1 for t in times if p.ts <= t < p.ts + timedelta(seconds=width))
        assert p.clicks == want, p.ts
    assert series.points[2].clicks == 0
    assert sum(p.clicks for p in series.points) > 0


async def test_series_of_missing_banner(repo: SqlRepository) -> None:
    assert await repo.click_series(424242, NOW - timedelta(hours=1), NOW, "minute") is None


async def test_delete_cascades_to_clicks_and_rollups(repo: SqlRepository) -> None:
    from bannertrack.conversions.values import ConversionIn

    keep = await repo.create_banner(new_banner(1))
    gone = await repo.create_banner(new_banner(2))
    await repo.record_clicks(
        [
            ClickIn(
                banner_id=b.id,
                occurred_at=NOW,
                visitor=f"v{i}",
                facts=ClickFacts(country="DE", device="mobile"),
                click_id=f"{i:022d}",
            )
            for i, b in enumerate((keep, gone, gone))
        ]
    )
    await repo.record_impressions([ImpressionCount(banner_id=gone.id, minute=NOW, count=2)])
    await _in_a_placement(repo, keep.id, gone.id)
    for i in range(2):  # a conversion of each banner: its rows in the conversion tables
        sale = ConversionIn(
            click_id=f"{i:022d}", goal="sale", value_micros=1, currency="EUR", occurred_at=NOW
        )
        await repo.record_conversion(sale, timedelta(days=30))
    before = await _rows_per_table(repo, gone.id)
    assert all(before.values()), before  # the banner has rows in every table
    assert await repo.delete_banner(gone.id)
    assert not any((await _rows_per_table(repo, gone.id)).values())
    assert all(
        n for t, n in (await _rows_per_table(repo, keep.id)).items() if t != "impression_minutes"
    )
    top = await repo.top_banners(10)
    assert [(t.banner.id, t.clicks) for t in top.items] == [(keep.id, 1)]
    assert not await repo.delete_banner(gone.id)


async def _in_a_placement(repo: SqlRepository, *banner_ids: int) -> None:
    """The banners in one placement, each with a row of placement counts."""
    from bannertrack.db.tables import placement_banners, placement_minutes, placements

    async with repo.engine.begin() as conn:
        placement = (
            await conn.execute(
                placements.insert()
                .values(name="p", created_at=NOW, updated_at=NOW)
                .returning(placements.c.id)
            )
        ).scalar_one()
        for b in banner_ids:
            await conn.execute(
                placement_banners.insert().values(placement_id=placement, banner_id=b, weight=1)
            )
            await conn.execute(
                placement_minutes.insert().values(
                    placement_id=placement, banner_id=b, minute=NOW, impressions=1
                )
            )


async def _rows_per_table(repo: SqlRepository, banner_id: int) -> dict[str, int]:
    """The banner's rows in every table that has a banner_id."""
    from sqlalchemy import func, select

    from bannertrack.db.tables import metadata

    out = {}
    async with repo.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if "banner_id" in table.c:
                query = select(func.count()).where(table.c.banner_id == banner_id)
                out[table.name] = int((await conn.execute(query)).scalar_one())
    return out


async def test_ping(repo: SqlRepository) -> None:
    await repo.ping()


async def test_returned_ids_belong_to_their_own_clicks(repo: SqlRepository) -> None:
    from sqlalchemy import select

    from bannertrack.db.tables import clicks

    banner = await repo.create_banner(new_banner())
    batch = [
        ClickIn(banner_id=banner.id, occurred_at=NOW, user_agent=f"marker-{i}")
        for i in range(2500)  # more than one multi-row INSERT on SQLite
    ]
    results = await repo.record_clicks(batch)
    async with repo.engine.connect() as conn:
        stored = dict((await conn.execute(select(clicks.c.id, clicks.c.user_agent))).all())
    assert [stored[r.id] for r in results if r is not None] == [c.user_agent for c in batch]


@pytest.mark.parametrize("backend", ["postgresql"])  # SQLite has one writer at a time
async def test_an_open_batch_does_not_hold_up_another_on_the_same_banner(
    repo: SqlRepository,
) -> None:
    """The batch's banner check takes FOR KEY SHARE, which only a DELETE (or a key change)
    waits for. A lock that conflicts with itself (FOR NO KEY UPDATE, what SQLAlchemy's
    ``key_share=True`` alone renders) made every other worker's batch on the banner wait
    for this one's COMMIT; a rename in progress (a non-key UPDATE) stands in for it here.
    """
    import asyncio

    from sqlalchemy import text

    banner = await repo.create_banner(new_banner())
    async with repo.engine.connect() as other:
        await other.execute(
            text("UPDATE banners SET name = 'renaming' WHERE id = :b"), {"b": banner.id}
        )
        # The other transaction is open and holds the banner row's no-key-update lock.
        recorded = await asyncio.wait_for(
            repo.record_clicks([ClickIn(banner_id=banner.id, occurred_at=NOW)]), timeout=3
        )
        assert recorded[0] is not None
        await other.rollback()
    stats = await repo.click_stats(banner.id)
    assert stats is not None and stats.total_clicks == 1
