"""Range figures of the dashboard at the repository, over SQLite and a real PostgreSQL.

Every expectation is computed from the clicks and impressions the test recorded itself,
so the rollup queries are checked against a plain count of the same events.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bannertrack.cache import MemoryCache
from bannertrack.caching.cached_repository import CachedRepository
from bannertrack.db.repository import SqlRepository
from bannertrack.models import BannerCreate, ClickIn, ImpressionCount, RecordedClick
from bannertrack.timeutil import floor_to

START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def banner(i: int) -> BannerCreate:
    return BannerCreate(
        name=f"banner {i}",
        image_url=f"https://cdn.example.com/{i}.png",
        target_url=f"https://shop.example.com/{i}",
    )


async def seed(repo: SqlRepository) -> tuple[list[int], list[RecordedClick], list[ImpressionCount]]:
    """Three banners, 400 clicks over 3 days (some bots, some repeats), impressions."""
    rng = random.Random(7)
    ids = [(await repo.create_banner(banner(i))).id for i in range(3)]
    batch = []
    for _ in range(400):
        bot = rng.random() < 0.1
        batch.append(
            ClickIn(
                banner_id=rng.choice(ids),
                occurred_at=START + timedelta(seconds=rng.randrange(3 * 86400)),
                visitor=f"v{rng.randrange(40)}",  # few visitors: repeats happen
                user_agent="agent",
                bot=bot,
                bot_reason="crawler:test" if bot else None,
            )
        )
    batch.sort(key=lambda c: c.occurred_at)
    recorded = [r for r in await repo.record_clicks(batch) if r is not None]
    shown = [
        ImpressionCount(
            banner_id=rng.choice(ids),
            minute=START + timedelta(minutes=rng.randrange(3 * 1440)),
            count=rng.randint(1, 50),
        )
        for _ in range(300)
    ]
    await repo.record_impressions(shown)
    return ids, recorded, shown


def overlaps(at: datetime, start: datetime, end: datetime) -> bool:
    return floor_to(start, 60) <= floor_to(at, 60) < end


async def test_range_totals_count_what_was_recorded(sql_repo: SqlRepository) -> None:
    ids, recorded, shown = await seed(sql_repo)
    start, end = START + timedelta(hours=13, seconds=30), START + timedelta(days=2, hours=3)
    for banner_id in (None, ids[0], ids[2]):
        got = await sql_repo.range_totals(banner_id, start, end)
        assert got is not None
        mine = [
            r
            for r in recorded
            if overlaps(r.occurred_at, start, end) and banner_id in (None, r.banner_id)
        ]
        valid = sum(1 for r in mine if not r.bot and not r.repeat)
        impressions = sum(
            s.count
            for s in shown
            if overlaps(s.minute, start, end) and banner_id in (None, s.banner_id)
        )
        assert (got.total_clicks, got.valid_clicks) == (len(mine), valid)
        assert got.bot_clicks == sum(1 for r in mine if r.bot)
        assert got.repeat_clicks == sum(1 for r in mine if r.repeat)
        assert got.repeat_clicks > 0 and got.bot_clicks > 0
        assert got.impressions == impressions
        assert got.ctr == pytest.approx(valid / impressions)
        assert (got.from_, got.to, got.banner_id) == (start, end, banner_id)


async def test_traffic_series_buckets_every_click_and_impression(sql_repo: SqlRepository) -> None:
    ids, recorded, shown = await seed(sql_repo)
    ragged = (START + timedelta(hours=5), START + timedelta(days=2, hours=1))
    aligned = (START, START + timedelta(days=2))  # the end is exclusive: two buckets
    cases = ((None, "day", 86400, ragged), (ids[1], "hour", 3600, ragged))
    for banner_id, interval, width, (start, end) in (*cases, (None, "day", 86400, aligned)):
        series = await sql_repo.traffic_series(banner_id, start, end, interval)  # type: ignore[arg-type]
        assert series is not None
        if (start, end) == aligned:
            assert len(series.points) == 2
        first, last = floor_to(start, width), floor_to(end - timedelta(microseconds=1), width)
        assert [p.ts for p in series.points] == [
            first + timedelta(seconds=i * width)
            for i in range(int((last - first).total_seconds()) // width + 1)
        ]
        valid: Counter[datetime] = Counter()
        bots: Counter[datetime] = Counter()
        repeats: Counter[datetime] = Counter()
        for r in recorded:
            key = floor_to(r.occurred_at, width)
            if banner_id in (None, r.banner_id) and first <= key <= last:
                target = bots if r.bot else repeats if r.repeat else valid
                target[key] += 1
        seen: Counter[datetime] = Counter()
        for s in shown:
            key = floor_to(s.minute, width)
            if banner_id in (None, s.banner_id) and first <= key <= last:
                seen[key] += s.count
        for p in series.points:
            assert (p.valid_clicks, p.bot_clicks, p.repeat_clicks, p.impressions) == (
                valid[p.ts],
                bots[p.ts],
                repeats[p.ts],
                seen[p.ts],
            )


async def test_top_banners_in_range_ranks_by_the_range_only(sql_repo: SqlRepository) -> None:
    _, recorded, _ = await seed(sql_repo)
    start, end = START + timedelta(days=1), START + timedelta(days=2)
    for count in ("total", "valid"):
        top = await sql_repo.top_banners_in_range(start, end, 2, count)  # type: ignore[arg-type]
        tally: Counter[int] = Counter(
            r.banner_id
            for r in recorded
            if overlaps(r.occurred_at, start, end) and (count == "total" or not (r.bot or r.repeat))
        )
        expected = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
        assert [(t.banner.id, t.clicks) for t in top.items] == expected
    empty = await sql_repo.top_banners_in_range(START - timedelta(days=9), START, 5)
    assert empty.items == ()


async def test_missing_banner_and_cached_pass_through(sql_repo: SqlRepository) -> None:
    ids, _, _ = await seed(sql_repo)
    end = START + timedelta(days=3)
    assert await sql_repo.range_totals(10_000, START, end) is None
    assert await sql_repo.traffic_series(10_000, START, end, "day") is None
    cached = CachedRepository(sql_repo, MemoryCache(max_entries=100))
    assert await cached.range_totals(ids[0], START, end) == await sql_repo.range_totals(
        ids[0], START, end
    )
    assert await cached.traffic_series(None, START, end, "day") == await sql_repo.traffic_series(
        None, START, end, "day"
    )
    assert await cached.top_banners_in_range(START, end, 3) == await sql_repo.top_banners_in_range(
        START, end, 3
    )
    # Not cached: a click recorded under the cache shows at once.
    before = await cached.range_totals(None, START, end)
    await sql_repo.record_clicks([ClickIn(banner_id=ids[0], occurred_at=START)])
    after = await cached.range_totals(None, START, end)
    assert before is not None and after is not None
    assert after.total_clicks == before.total_clicks + 1
