"""Group commit over a real SQLite file and a real PostgreSQL.

"The database falls behind" is made real, not simulated: another connection holds the
write lock (``BEGIN IMMEDIATE`` on SQLite, ``LOCK TABLE clicks`` on PostgreSQL), so the
writer's batch waits inside the database exactly as it would behind a slow disk.
A failing batch is a real failure too: a trigger that aborts the insert of one click.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import column, func, select, text
from sqlalchemy import table as sa_table
from sqlalchemy.engine import make_url
from tests.conftest import ADMIN, ADMIN_TOKEN
from tests.support.banners import make_banner
from tests.support.server import ServerProcess
from tests.support.waiting import wait_until

from bannertrack.cache import MemoryCache
from bannertrack.caching.cached_repository import CachedRepository
from bannertrack.clicks.ingest import ClickIngest
from bannertrack.db.engine import create_engine
from bannertrack.db.migrate import upgrade
from bannertrack.db.repository import SqlRepository
from bannertrack.db.tables import UtcDateTime, banner_totals, click_minutes, clicks
from bannertrack.errors import OverloadedError
from bannertrack.models import BannerCreate, ClickIn, RecordedClick
from bannertrack.timeutil import floor_to, utcnow

T0 = datetime(2026, 11, 24, 9, 0, 0, tzinfo=UTC)

# The tables as revision 0001 had them (the current ones have grown columns since).
BANNERS_0001 = sa_table(
    "banners",
    *(column(n) for n in ("id", "name", "image_url", "target_url", "active", "forward_query")),
    column("created_at", UtcDateTime),
    column("updated_at", UtcDateTime),
)
CLICKS_0001 = sa_table("clicks", column("banner_id"), column("occurred_at", UtcDateTime))


def banner_in(i: int = 1) -> BannerCreate:
    return BannerCreate(
        name=f"ingest {i}",
        image_url=f"https://cdn.example.com/{i}.png",
        target_url=f"https://shop.example.com/{i}",
    )


def click(banner_id: int, n: int = 0, referrer: str | None = None) -> ClickIn:
    return ClickIn(
        banner_id=banner_id,
        occurred_at=utcnow(),
        referrer=referrer if referrer is not None else f"https://ref.example/{n}",
    )


async def stored(repo: SqlRepository) -> int:
    async with repo.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(clicks))).scalar_one())


@asynccontextmanager
async def write_lock_held(database_url: str) -> AsyncIterator[None]:
    """Another session holds the write lock on clicks until the block ends."""
    if database_url.startswith("sqlite"):
        path = make_url(database_url).database
        assert path
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            con.execute("ROLLBACK")
            con.close()
        return
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            await conn.begin()
            await conn.execute(text("LOCK TABLE clicks IN EXCLUSIVE MODE"))
            try:
                yield
            finally:
                await conn.rollback()
    finally:
        await engine.dispose()


async def test_concurrent_clicks_are_written_in_few_transactions(
    sql_repo: SqlRepository, backend: str
) -> None:
    a = await sql_repo.create_banner(banner_in(1))
    b = await sql_repo.create_banner(banner_in(2))
    batches: list[int] = []
    ingest = ClickIngest(sql_repo, on_batch=lambda n, _s: batches.append(n))
    await ingest.start()
    queries = sql_repo.queries.count
    try:
        results = await asyncio.gather(
            *(ingest.record(click(a.id if i % 3 else b.id, i)) for i in range(400))
        )
    finally:
        await ingest.stop()
    assert all(r is not None for r in results)
    assert len({r.id for r in results if r}) == 400
    assert sum(batches) == 400
    assert len(batches) <= 10, batches
    # Statements per batch stay few on PostgreSQL (one multi-row INSERT); SQLite cannot
    # return ids of a multi-row INSERT in order, so SQLAlchemy inserts its rows one by one
    # inside the one transaction: still one COMMIT (one fsync) per batch.
    per_click = 1 if backend == "sqlite" else 0
    assert sql_repo.queries.count - queries <= 12 * len(batches) + per_click * 400
    assert await stored(sql_repo) == 400
    stats_a, stats_b = await sql_repo.click_stats(a.id), await sql_repo.click_stats(b.id)
    assert stats_a and stats_b
    assert (stats_a.total_clicks, stats_b.total_clicks) == (266, 134)


async def test_acknowledged_click_is_committed_and_visible(
    sql_repo: SqlRepository, database_url: str
) -> None:
    banner = await sql_repo.create_banner(banner_in())
    cache = MemoryCache(max_entries=1000, default_ttl=60, cleanup_interval=60)
    await cache.start()
    cached = CachedRepository(sql_repo, cache)
    other = SqlRepository.from_url(database_url)  # a different pool: sees committed rows only
    ingest = ClickIngest(cached)
    await ingest.start()
    try:
        before = await cached.click_stats(banner.id)  # now cached
        assert before is not None and before.total_clicks == 0

        async def one(n: int) -> None:
            recorded = await ingest.record(click(banner.id, n))
            assert recorded is not None
            async with other.engine.connect() as conn:
                row = (
                    await conn.execute(select(clicks.c.referrer).where(clicks.c.id == recorded.id))
                ).one()
            assert row.referrer == f"https://ref.example/{n}"
            # The batch's invalidation ran before the acknowledgement.
            stats = await cached.click_stats(banner.id)
            assert stats is not None and stats.total_clicks >= 1

        await asyncio.gather(*(one(n) for n in range(40)))
    finally:
        await ingest.stop()
        await other.close()
        await cache.stop()
    final = await cached.click_stats(banner.id)
    assert final is not None and final.total_clicks == 40


async def test_rejected_click_fails_alone_and_the_rest_of_its_batch_is_stored(
    sql_repo: SqlRepository, backend: str
) -> None:
    """A click the database rejects fails by itself; its batch-mates are stored once."""
    banner = await sql_repo.create_banner(banner_in())
    async with sql_repo.engine.begin() as conn:
        if backend == "sqlite":
            await conn.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON clicks WHEN NEW.referrer = 'poison' "
                    "BEGIN SELECT RAISE(ABORT, 'poison click'); END"
                )
            )
        else:
            await conn.execute(
                text(
                    "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "IF NEW.referrer = 'poison' THEN RAISE EXCEPTION 'poison click'; END IF; "
                    "RETURN NEW; END $$"
                )
            )
            await conn.execute(
                text(
                    "CREATE TRIGGER poison BEFORE INSERT ON clicks "
                    "FOR EACH ROW EXECUTE FUNCTION poison()"
                )
            )
    poison = [click(banner.id, referrer="poison")]
    if backend == "postgresql":
        # PostgreSQL text cannot hold NUL: the driver's own rejection, no trigger needed.
        poison.append(click(banner.id, referrer="https://ref.example/\x00nul"))
    written: list[int] = []
    ingest = ClickIngest(sql_repo, on_batch=lambda n, _s: written.append(n))
    await ingest.start()
    try:
        good = [click(banner.id, n) for n in range(30)]
        mixed = [*good[:10], poison[0], *good[10:20], *poison[1:], *good[20:]]
        results = await asyncio.gather(*(ingest.record(c) for c in mixed), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        ok = [r for r in results if isinstance(r, RecordedClick)]
        assert len(failed) == len(poison), failed
        assert len(ok) == 30 and len({r.id for r in ok}) == 30
        assert ingest.clicks_failed == len(poison) and ingest.clicks_written == 30
        assert sum(written) == 30
        assert await stored(sql_repo) == 30  # each good click exactly once
        stats = await sql_repo.click_stats(banner.id)
        assert stats is not None and stats.total_clicks == 30  # rollups agree
        # The writer lives on: the next batch is stored.
        assert await ingest.record(click(banner.id, 99)) is not None
    finally:
        await ingest.stop()
    assert await stored(sql_repo) == 31


async def test_database_behind_fills_the_queue_and_refuses(
    sql_repo: SqlRepository, database_url: str
) -> None:
    banner = await sql_repo.create_banner(banner_in())
    ingest = ClickIngest(sql_repo, max_batch=5, max_queue=20)
    await ingest.start()
    tasks: list[asyncio.Task[RecordedClick | None]] = []
    try:
        async with write_lock_held(database_url):
            # All 60 arrive in one tick: 20 fit the queue, 40 are refused at once; then the
            # writer takes 5 into a batch that waits on the lock.
            tasks = [asyncio.create_task(ingest.record(click(banner.id, n))) for n in range(60)]
            await wait_until(lambda: ingest.queued == 15, timeout=5)
            refused = [t for t in tasks if t.done()]
            assert len(refused) == 40
            assert all(isinstance(t.exception(), OverloadedError) for t in refused)
    finally:
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await ingest.stop()
    acked = [r for r in results if not isinstance(r, BaseException)]
    assert len(acked) == 20
    assert await stored(sql_repo) == 20


@pytest.mark.e2e
async def test_overload_over_http_is_503_with_retry_after(
    database_url: str, sql_repo: SqlRepository, tmp_path: Path
) -> None:
    # A real server process: the in-process test client runs one request at a time.
    env = {
        "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN,
        "BANNERTRACK_INGEST_MAX_BATCH": "2",
        "BANNERTRACK_INGEST_MAX_QUEUE": "5",
        # The blocked batch must stay blocked until the lock is let go, however slow
        # the machine: a statement timeout would fail it and empty the queue early.
        "BANNERTRACK_DB_TIMEOUT": "60",
        # Nor may the outage spool take the blocked batch over (it would answer 202).
        "BANNERTRACK_SPOOL_AFTER": "60",
    }
    with ServerProcess(database_url, tmp_path / "server.log", env=env) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            banner_id = (await make_banner(client))["id"]
            url = f"/api/v1/banners/{banner_id}/clicks"
            assert (await client.post(url, headers=ADMIN)).status_code == 201
            async with asyncio.timeout(30), write_lock_held(database_url):
                # 1 or 2 clicks in the batch waiting on the lock, the rest queued. Which
                # depends on how the 7 arrive: when all are in before the writer takes its
                # batch, the queue is full at 5 and 2 of them are refused at once.
                first = [asyncio.create_task(client.post(url, headers=ADMIN)) for _ in range(7)]
                queued = await _queued_when(client, lambda q: q + sum(t.done() for t in first) >= 5)
                # Top the queue up to full (waited for, not slept on: a loaded machine is slow).
                first += [
                    asyncio.create_task(client.post(url, headers=ADMIN)) for _ in range(5 - queued)
                ]
                await _queued_when(client, lambda q: q == 5)
                refused = await asyncio.gather(
                    *(client.post(url, headers=ADMIN) for _ in range(10))
                )
                health = (await client.get("/healthz")).json()
            answers = [*refused, *await asyncio.gather(*first)]
            early = [a for a in answers[len(refused) :] if a.status_code == 503]
            stats = (await client.get(f"/api/v1/banners/{banner_id}/stats")).json()
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) == {201, 503}, statuses
    for a in [*refused, *early]:  # the queue was full: refused at once, with a retry hint
        assert a.status_code == 503
        assert a.json()["error"]["code"] == "overloaded"
        assert int(a.headers["retry-after"]) >= 1
    assert health["checks"]["ingest"]["queued"] == 5
    # 5 queued plus the 1 or 2 in the blocked batch (how the first 7 arrive decides it).
    assert 6 <= statuses[201] <= 7 and len(early) <= 2
    assert await stored(sql_repo) == 1 + statuses[201] == stats["total_clicks"]


async def _queued_when(client: httpx.AsyncClient, done: Callable[[int], bool]) -> int:
    """The ingest queue's length once ``done(length)``."""
    seen: list[int] = []

    async def check() -> bool:
        health = (await client.get("/healthz")).json()
        seen.append(int(health["checks"]["ingest"]["queued"]))
        return done(seen[-1])

    await wait_until(
        check, timeout=25, interval=0.05, what=lambda: f"ingest queue stuck at {seen[-1:]}"
    )
    return seen[-1]


# migration 0002: rollups back-filled from raw clicks ------------------------------------


async def test_migration_backfills_rollups_from_raw_clicks(unmigrated_url: str) -> None:
    engine = create_engine(unmigrated_url)
    try:
        await upgrade(engine, "0001")
        times = [T0 + timedelta(seconds=s, microseconds=us) for s, us in _SPREAD]
        async with engine.begin() as conn:
            ids = []
            for i in range(3):  # banner 3 never gets a click
                ids.append(
                    (
                        await conn.execute(
                            BANNERS_0001.insert()
                            .values(
                                name=f"old {i}",
                                image_url="https://cdn.example.com/x.png",
                                target_url="https://shop.example.com/x",
                                active=True,
                                forward_query=True,
                                created_at=T0,
                                updated_at=T0,
                            )
                            .returning(BANNERS_0001.c.id)
                        )
                    ).scalar_one()
                )
            raw = [{"banner_id": ids[n % 2], "occurred_at": t} for n, t in enumerate(times)]
            await conn.execute(CLICKS_0001.insert(), raw)
        await upgrade(engine)

        want_totals = {b: (0, None, None) for b in ids}
        want_minutes: Counter[tuple[int, datetime]] = Counter()
        for row in raw:
            b, t = row["banner_id"], row["occurred_at"]
            n, lo, hi = want_totals[b]
            want_totals[b] = (n + 1, min(lo or t, t), max(hi or t, t))
            want_minutes[(b, floor_to(t, 60))] += 1
        async with engine.connect() as conn:
            totals = {
                r.banner_id: (r.total_clicks, r.first_click_at, r.last_click_at)
                for r in await conn.execute(select(banner_totals))
            }
            minutes = {
                (r.banner_id, r.minute): r.clicks for r in await conn.execute(select(click_minutes))
            }
        assert totals == want_totals
        assert minutes == dict(want_minutes)
    finally:
        await engine.dispose()

    # The service's own writes land on the back-filled rows, not beside them.
    repo = SqlRepository.from_url(unmigrated_url)
    try:
        late = T0 + timedelta(seconds=61, microseconds=5)
        await repo.record_clicks([ClickIn(banner_id=ids[0], occurred_at=late)])
        async with repo.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(click_minutes.c.clicks).where(
                        click_minutes.c.banner_id == ids[0],
                        click_minutes.c.minute == floor_to(late, 60),
                    )
                )
            ).all()
        assert [r.clicks for r in rows] == [want_minutes[(ids[0], floor_to(late, 60))] + 1]
        series = await repo.click_series(ids[0], T0, T0 + timedelta(minutes=3), "minute")
        assert series is not None
        want_series = [want_minutes[(ids[0], T0 + timedelta(minutes=m))] for m in range(4)]
        want_series[1] += 1
        assert [p.clicks for p in series.points] == want_series
        top = await repo.top_banners(3)
        assert [(i.banner.id, i.clicks) for i in top.items] == [
            (ids[0], 8),  # 7 back-filled + 1 new
            (ids[1], 6),
            (ids[2], 0),
        ]
    finally:
        await repo.close()


# (seconds after T0, microseconds): several minutes, minute edges, sub-second times.
_SPREAD = [
    (0, 0),
    (0, 1),
    (59, 999_999),
    (60, 0),
    (61, 250_000),
    (119, 500_000),
    (120, 0),
    (125, 17),
    (150, 0),
    (179, 999_999),
    (185, 3),
    (3, 700_000),
    (65, 1),
]
