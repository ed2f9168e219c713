"""Counts a marketer can trust, at the repository: flags, rollups, impressions, retention.

Run over SQLite and a real PostgreSQL. Every expectation is computed from the clicks
the test itself recorded.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from bannertrack.clicks.retention import Retention
from bannertrack.clicks.salt_key import SaltKey, sealed_salt_loader
from bannertrack.db.engine import create_engine
from bannertrack.db.migrate import upgrade
from bannertrack.db.repository import SqlRepository
from bannertrack.db.tables import clicks, visitor_clicks, visitor_salts
from bannertrack.models import BannerCreate, ClickIn, ImpressionCount

NOW = datetime(2026, 11, 24, 12, 30, 17, 250_000, tzinfo=UTC)
HOUR = timedelta(hours=1)


def new_banner(i: int = 1) -> BannerCreate:
    return BannerCreate(
        name=f"banner {i}",
        image_url=f"https://cdn.example.com/{i}.png",
        target_url=f"https://shop.example.com/{i}",
    )


def click(banner_id: int, at: datetime, visitor: str | None = "v1", bot: bool = False) -> ClickIn:
    return ClickIn(
        banner_id=banner_id,
        occurred_at=at,
        visitor=visitor,
        user_agent="agent",
        bot=bot,
        bot_reason="crawler:test" if bot else None,
    )


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[SqlRepository]:
    """A repository whose clock stands at ``NOW`` (banners' created and updated times)."""
    r = SqlRepository.from_url(database_url, clock=lambda: NOW)
    try:
        yield r
    finally:
        await r.close()


def model_flags(
    batch: list[ClickIn], window: timedelta, state: dict[tuple[int, str], datetime]
) -> list[bool]:
    """The rule of docs/counting.md, written plainly: a repeat is a non-bot click whose
    visitor's last valid click on that banner is less than a window away."""
    out = []
    for c in batch:
        if c.bot or c.visitor is None:
            out.append(False)
            continue
        key = (c.banner_id, c.visitor)
        last = state.get(key)
        if last is not None and abs(c.occurred_at - last) < window:
            out.append(True)
            continue
        if last is None or c.occurred_at > last:
            state[key] = c.occurred_at
        out.append(False)
    return out


async def test_repeats_within_a_batch_and_across_batches(repo: SqlRepository) -> None:
    b = (await repo.create_banner(new_banner())).id
    other = (await repo.create_banner(new_banner(2))).id
    first = [
        click(b, NOW),  # valid: opens the window
        click(b, NOW + timedelta(minutes=10)),  # repeat
        click(b, NOW + timedelta(minutes=20), visitor="v2"),  # another visitor: valid
        click(other, NOW + timedelta(minutes=21)),  # another banner: valid
        click(b, NOW + timedelta(minutes=30), bot=True),  # bot: flagged bot, never repeat
        click(b, NOW + timedelta(minutes=31), visitor=None),  # no address: valid
        click(b, NOW + timedelta(minutes=61)),  # a window after the valid one: valid
        click(b, NOW + timedelta(minutes=62)),  # repeat of that one
    ]
    got = await repo.record_clicks(first)
    assert [(r.bot, r.repeat) for r in got if r] == [
        (False, False),
        (False, True),
        (False, False),
        (False, False),
        (True, False),
        (False, False),
        (False, False),
        (False, True),
    ]
    # Next batch: the window of the 61-minute click still holds.
    got = await repo.record_clicks(
        [click(b, NOW + timedelta(minutes=100)), click(b, NOW + timedelta(minutes=122))]
    )
    assert [r.repeat for r in got if r] == [True, False]

    stats = await repo.click_stats(b)
    assert stats is not None
    assert (stats.total_clicks, stats.valid_clicks, stats.bot_clicks, stats.repeat_clicks) == (
        9,
        5,
        1,
        3,
    )
    assert stats.impressions == 0 and stats.ctr is None
    async with repo.engine.connect() as conn:
        flags = (
            await conn.execute(
                select(clicks.c.bot, clicks.c.bot_reason, clicks.c.repeat)
                .where(clicks.c.banner_id == b)
                .order_by(clicks.c.id)
            )
        ).all()
    assert sum(r.repeat for r in flags) == 3 and [r.bot_reason for r in flags if r.bot] == [
        "crawler:test"
    ]


async def test_flags_match_a_plain_model_over_random_batches(repo: SqlRepository) -> None:
    banners = [(await repo.create_banner(new_banner(i))).id for i in range(3)]
    rng = random.Random(5)
    window = timedelta(hours=1)
    state: dict[tuple[int, str], datetime] = {}
    at = NOW
    totals = {b: [0, 0, 0, 0] for b in banners}
    for _ in range(12):
        batch = []
        for _ in range(rng.randrange(1, 40)):
            at += timedelta(seconds=rng.uniform(0, 400))
            batch.append(
                click(
                    rng.choice(banners),
                    at,
                    visitor=rng.choice(["a", "b", "c", "d", None]),
                    bot=rng.random() < 0.15,
                )
            )
        want = model_flags(batch, window, state)
        got = await repo.record_clicks(batch)
        assert [r.repeat for r in got if r] == want
        for c, rep in zip(batch, want, strict=True):
            t = totals[c.banner_id]
            t[0] += 1
            t[1] += not c.bot and not rep
            t[2] += c.bot
            t[3] += rep
    for b in banners:
        s = await repo.click_stats(b)
        assert s is not None
        assert [s.total_clicks, s.valid_clicks, s.bot_clicks, s.repeat_clicks] == totals[b]
        assert s.total_clicks == s.valid_clicks + s.bot_clicks + s.repeat_clicks


async def test_concurrent_writers_count_a_visitor_once(database_url: str) -> None:
    """Two repositories (two instances) write the same visitor's clicks at once."""
    a, b = SqlRepository.from_url(database_url), SqlRepository.from_url(database_url)
    try:
        banner = (await a.create_banner(new_banner())).id
        now = datetime.now(UTC)
        rounds = 15
        for i in range(rounds):
            visitor = f"visitor-{i}"
            results = await asyncio.gather(
                a.record_clicks([click(banner, now, visitor)]),
                b.record_clicks([click(banner, now + timedelta(milliseconds=1), visitor)]),
            )
            flags = sorted(r[0].repeat for r in results if r[0] is not None)
            assert flags == [False, True], (i, flags)
        stats = await a.click_stats(banner)
        assert stats is not None
        assert (stats.valid_clicks, stats.repeat_clicks) == (rounds, rounds)
    finally:
        await a.close()
        await b.close()


async def test_top_banners_and_series_count_valid(repo: SqlRepository) -> None:
    noisy = (await repo.create_banner(new_banner(1))).id
    honest = (await repo.create_banner(new_banner(2))).id
    # noisy: 6 clicks, 1 valid (4 bots, 1 repeat); honest: 3 clicks, all valid.
    await repo.record_clicks(
        [click(noisy, NOW - timedelta(minutes=5), bot=True) for _ in range(4)]
        + [click(noisy, NOW - timedelta(minutes=4)), click(noisy, NOW - timedelta(minutes=3))]
        + [click(honest, NOW - timedelta(minutes=2), visitor=f"h{i}") for i in range(3)]
    )
    total = await repo.top_banners(2)
    assert [(t.banner.id, t.clicks) for t in total.items] == [(noisy, 6), (honest, 3)]
    valid = await repo.top_banners(2, "valid")
    assert [(t.banner.id, t.clicks) for t in valid.items] == [(honest, 3), (noisy, 1)]

    series = await repo.click_series(noisy, NOW - timedelta(minutes=10), NOW, "minute", "valid")
    assert series is not None and sum(p.clicks for p in series.points) == 1
    series = await repo.click_series(noisy, NOW - timedelta(minutes=10), NOW, "minute")
    assert series is not None and sum(p.clicks for p in series.points) == 6


async def test_impressions_are_per_minute_counts_and_make_the_ctr(repo: SqlRepository) -> None:
    b = (await repo.create_banner(new_banner())).id
    minute = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    await repo.record_impressions(
        [
            ImpressionCount(banner_id=b, minute=minute, count=30),
            ImpressionCount(banner_id=b, minute=minute + timedelta(minutes=1), count=10),
            ImpressionCount(banner_id=b + 999, minute=minute, count=5),  # no such banner
        ]
    )
    await repo.record_impressions([ImpressionCount(banner_id=b, minute=minute, count=10)])
    assert await repo.impressions([b, b + 999]) == {b: 50}
    await repo.record_clicks([click(b, NOW, f"v{i}") for i in range(4)] + [click(b, NOW, "v0")])
    stats = await repo.click_stats(b)
    assert stats is not None
    assert (stats.impressions, stats.valid_clicks, stats.repeat_clicks) == (50, 4, 1)
    assert stats.ctr == pytest.approx(4 / 50)


async def test_visitor_salt_is_shared_sealed_and_old_days_are_deleted(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = SqlRepository.from_url(database_url), SqlRepository.from_url(database_url)
    key = SaltKey(b"k" * 32)
    try:
        today, yesterday = date(2026, 11, 24), date(2026, 11, 23)
        load_a, load_b = (sealed_salt_loader(r.sealed_salt, key) for r in (a, b))
        old = await load_a(yesterday)
        salts = await asyncio.gather(*(load(today) for load in (load_a, load_b, load_a, load_b)))
        assert len(set(salts)) == 1 and len(salts[0]) == 32 and salts[0] != old
        async with a.engine.connect() as conn:
            rows = (await conn.execute(select(visitor_salts))).all()
        assert [r.day for r in rows] == [today]
        assert bytes(rows[0].sealed) == key.seal(salts[0], today) != salts[0]

        # An instance with another key cannot unseal it, and says so without the salt.
        with caplog.at_level(logging.ERROR, logger="bannertrack"):
            other = await sealed_salt_loader(b.sealed_salt, SaltKey(b"x" * 32))(today)
        assert other != salts[0]
        assert "another salt key" in caplog.text
        assert salts[0].hex() not in caplog.text and other.hex() not in caplog.text
    finally:
        await a.close()
        await b.close()


async def test_retention_deletes_old_raw_clicks_in_batches_and_keeps_counts(
    repo: SqlRepository,
) -> None:
    b = (await repo.create_banner(new_banner())).id
    other = (await repo.create_banner(new_banner(2))).id
    old = [click(b, NOW - timedelta(days=40, minutes=i), f"o{i}") for i in range(23)]
    old += [click(other, NOW - timedelta(days=31), "x")]
    recent = [click(b, NOW - timedelta(days=29), f"r{i}") for i in range(4)]
    await repo.record_clicks(old + recent)
    before = (await repo.click_stats(b), await repo.top_banners(5))

    retention = Retention(
        repo, retention_days=30, dedup_window=3600, batch=5, pause=0, clock=lambda: NOW
    )
    run = await retention.run_once()
    assert run.clicks_deleted == 24
    assert (await repo.click_stats(b), await repo.top_banners(5)) == before
    async with repo.engine.connect() as conn:
        left = (await conn.execute(select(func.count()).select_from(clicks))).scalar_one()
        visitors = (
            await conn.execute(select(func.count()).select_from(visitor_clicks))
        ).scalar_one()
    assert left == 4
    # Every visitor's window ended long before NOW: all forgotten.
    assert visitors == 0 and run.visitors_forgotten == 28
    assert (await retention.run_once()).clicks_deleted == 0


async def test_export_pages_are_ordered_and_complete(repo: SqlRepository) -> None:
    b = (await repo.create_banner(new_banner())).id
    times = [NOW - timedelta(seconds=s) for s in (5, 5, 5, 4, 3, 3, 2, 1, 100)]
    await repo.record_clicks([click(b, t, f"v{i}") for i, t in enumerate(times)])
    start, end = NOW - timedelta(seconds=10), NOW
    seen = []
    after = None
    while True:
        page = await repo.export_page(b, start, end, after, 2)
        seen += page
        if len(page) < 2:
            break
        after = (page[-1].occurred_at, page[-1].id)
    assert [c.occurred_at for c in seen] == sorted(t for t in times if start <= t < end)
    assert len({c.id for c in seen}) == len(seen) == 8
    assert await repo.clicks_in_range(b, start, end) >= 8


async def test_migration_0003_counts_old_clicks_as_valid(unmigrated_url: str) -> None:
    engine = create_engine(unmigrated_url)
    try:
        await upgrade(engine, "0002")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO banners (name, image_url, target_url, active, forward_query, "
                    "created_at, updated_at) VALUES ('old', 'https://a.example/i', "
                    "'https://a.example', true, true, :t, :t)"
                ),
                {"t": NOW},
            )
            await conn.execute(
                text(
                    "INSERT INTO banner_totals (banner_id, total_clicks) SELECT id, 3 FROM banners"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO click_minutes (banner_id, minute, clicks) "
                    "SELECT id, :m, 3 FROM banners"
                ),
                {"m": NOW.replace(second=0, microsecond=0)},
            )
        await upgrade(engine)
        repo = SqlRepository(engine)
        stats = await repo.click_stats(1)
        assert stats is not None
        assert (stats.total_clicks, stats.valid_clicks, stats.bot_clicks) == (3, 3, 0)
        top = await repo.top_banners(1, "valid")
        assert [t.clicks for t in top.items] == [3]
    finally:
        await engine.dispose()
