"""PostgreSQL's one-statement click batch (``pg_clicks.write_in_one``) against the
two-statement one it stands in for.

A batch in which no visitor clicks a banner twice is written as one autocommit statement
that flags repeats and tallies every rollup in SQL. The reference is the two-statement
batch, which flags and tallies in Python: random batch sequences (bots, clicks without a
visitor, unknown banners, repeats across batches, values past the fold's top N, a day
boundary, non-UTC times) go through each on its own database, and the answers and every
table must be equal, ids included.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.conftest import PostgresFactory

from bannertrack.db.breakdown_writes import BreakdownFold
from bannertrack.db.click_plan import visitor_groups
from bannertrack.db.pg_clicks import write_clicks, write_in_two
from bannertrack.db.repository import SqlRepository
from bannertrack.models import BannerCreate, ClickFacts, ClickIn

WINDOW = 30 * 60 * 1_000_000
START = datetime(2026, 11, 30, 22, 40, 0, tzinfo=UTC)  # batches cross midnight
TABLES = {
    "clicks": "id",
    "banner_totals": "banner_id",
    "click_minutes": "banner_id, minute",
    "click_breakdowns": "banner_id, day, dimension, value",
    "visitor_clicks": "banner_id, visitor",
}


@pytest.fixture
async def pair(postgres: PostgresFactory) -> AsyncIterator[tuple[SqlRepository, SqlRepository]]:
    urls = [postgres.create(), postgres.create()]
    repos = [SqlRepository.from_url(u) for u in urls]
    try:
        yield repos[0], repos[1]
    finally:
        for r in repos:
            await r.close()
        for u in urls:
            postgres.drop(u)


def _batch(rng: random.Random, banner_ids: list[int], at: datetime) -> list[ClickIn]:
    taken: set[tuple[int, str]] = set()
    out = []
    for _ in range(rng.randint(1, 60)):
        banner_id = rng.choice([*banner_ids, 10_000])  # 10,000: no such banner
        bot = rng.random() < 0.15
        visitor: str | None = f"v{rng.randint(0, 25)}" if rng.random() < 0.9 else None
        if not bot and visitor is not None:
            if (banner_id, visitor) in taken:
                continue  # one click per visitor and banner: the one-statement batch
            taken.add((banner_id, visitor))
        t = at + timedelta(seconds=rng.randint(-90, 90), microseconds=rng.randint(0, 999_999))
        if rng.random() < 0.1:
            t = t.astimezone(timezone(timedelta(hours=5, minutes=30)))
        facts = None
        if rng.random() < 0.8:
            facts = ClickFacts(
                country=rng.choice([None, "DE", "FR"]),
                device=rng.choice(["desktop", "mobile"]),
                browser=rng.choice(["Firefox", "Chrome", None]),
                referrer_host=rng.choice([None, *(f"r{i}.example" for i in range(6))]),
                utm_campaign=rng.choice([None, "(none)", "spring"]),
            )
        out.append(
            ClickIn(
                banner_id=banner_id,
                occurred_at=t,
                visitor=visitor,
                user_agent=rng.choice([None, "agent/1"]),
                referrer=rng.choice([None, "https://r1.example/x"]),
                bot=bot,
                bot_reason="ua:bot" if bot else None,
                facts=facts,
            )
        )
    return out


async def _banners(repo: SqlRepository, n: int) -> list[int]:
    return [
        (await repo.create_banner(BannerCreate(
            name=f"b{i}", image_url="https://cdn.example/a.png", target_url="https://a.example/"
        ))).id
        for i in range(n)
    ]  # fmt: skip


async def _write(
    repo: SqlRepository, fold: BreakdownFold, batch: Sequence[ClickIn], two: bool, window: int
) -> Any:
    async with repo.engine.connect() as conn:
        if two:
            groups = visitor_groups(batch) if window else {}
            written = await write_in_two(conn, window, fold, batch, groups)
        else:
            written = await write_clicks(conn, window, fold, batch)
        if conn.in_transaction():
            await conn.commit()
    return written


async def _tables(engine: AsyncEngine) -> dict[str, list[Any]]:
    async with engine.connect() as conn:
        return {
            name: [
                tuple(r) for r in await conn.execute(text(f"SELECT * FROM {name} ORDER BY {key}"))
            ]
            for name, key in TABLES.items()
        }


@pytest.mark.parametrize(("seed", "window"), [(1, WINDOW), (2, WINDOW), (3, WINDOW), (4, 0)])
async def test_one_statement_stores_what_two_statements_store(
    pair: tuple[SqlRepository, SqlRepository], seed: int, window: int
) -> None:
    one, two = pair
    banners = await _banners(one, 4)
    assert await _banners(two, 4) == banners
    folds = BreakdownFold(top_n=3), BreakdownFold(top_n=3)
    rng = random.Random(seed)
    at = START
    for _ in range(12):
        batch = _batch(rng, banners, at)
        assert all(len(g) == 1 for g in visitor_groups(batch).values())
        before = one.queries.count
        got = await _write(one, folds[0], batch, two=False, window=window)
        # One statement (plus, the first time a (banner, day) is seen, the fold's read).
        assert one.queries.count - before in (1, 2)
        assert got == await _write(two, folds[1], batch, two=True, window=window)
        at += timedelta(minutes=rng.choice([1, 7, 40]))
    assert await _tables(one.engine) == await _tables(two.engine)
    stored = await _tables(one.engine)
    assert any(row[8] for row in stored["clicks"]) == (window > 0), "repeats"
    assert any(row[3] == "(other)" for row in stored["click_breakdowns"]), "nothing folded"


async def test_a_visitor_twice_in_a_batch_takes_two_statements(
    pair: tuple[SqlRepository, SqlRepository],
) -> None:
    repo = pair[0]
    (b,) = await _banners(repo, 1)
    clicks = [
        ClickIn(banner_id=b, occurred_at=START + timedelta(minutes=m), visitor="v", user_agent="a")
        for m in (0, 10, 70)  # the repository's window is an hour
    ]
    await repo.record_clicks(clicks[:1])  # learns the day
    before = repo.queries.count
    recorded = await repo.record_clicks(clicks)
    assert [r.repeat for r in recorded if r] == [True, True, False]
    assert repo.queries.count - before == 3  # lock and upsert, the window's move, the rest


async def test_one_and_two_statement_batches_never_deadlock(postgres: PostgresFactory) -> None:
    """Both shapes at once from two instances, over the same banners, visitors and
    breakdown values (values whose order differs between collations: both must lock
    breakdown rows in code point order), each batch in its own order."""
    url = postgres.create()
    a, b = SqlRepository.from_url(url), SqlRepository.from_url(url)
    values = ["Zebra", "apple", "Äpfel", "zebra", "Apple", "_x", "ß"]
    try:
        ids = await _banners(a, 3)

        def batch(k: int, twice: bool) -> list[ClickIn]:
            out = [
                ClickIn(
                    banner_id=ids[(i + k) % 3],
                    occurred_at=START + timedelta(seconds=i),
                    visitor=f"v{i}",
                    user_agent="agent",
                    facts=ClickFacts(referrer_host=values[(i + k) % len(values)]),
                )
                for i in range(30)
            ]
            if twice:  # the same visitor twice on a banner: the two-statement batch
                out.append(out[0])
            return out[::-1] if k % 2 else out

        sent = 0
        for round_ in range(30):
            batches = [batch(round_ + k, twice=k % 2 == 1) for k in range(4)]
            results = await asyncio.gather(
                a.record_clicks(batches[0]),
                b.record_clicks(batches[1]),
                b.record_clicks(batches[2]),
                a.record_clicks(batches[3]),
            )
            assert all(r is not None for rs in results for r in rs)
            sent += sum(len(x) for x in batches)
        async with a.engine.connect() as conn:
            stored = (await conn.execute(text("SELECT count(*) FROM clicks"))).scalar_one()
            by_referrer = (
                await conn.execute(
                    text("SELECT sum(clicks) FROM click_breakdowns WHERE dimension = 'referrer'")
                )
            ).scalar_one()
        totals = [await a.click_stats(i) for i in ids]
        assert stored == sent == by_referrer == sum(t.total_clicks for t in totals if t)
    finally:
        await a.close()
        await b.close()
        postgres.drop(url)
