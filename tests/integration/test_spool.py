"""The outage spool against a real PostgreSQL behind a loopback proxy the test cuts.

Clicks taken while the database is gone are acknowledged from the spool and replayed
exactly once when it answers; the rollups and repeat flags then equal a recount from the
raw clicks and equal what a database that never went away holds for the same clicks.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.support.proxy import TcpProxy
from tests.support.recount import recount
from tests.support.services import PostgresFactory

from bannertrack.cache import MemoryCache
from bannertrack.caching.cached_repository import CachedRepository
from bannertrack.clicks.ingest import ClickIngest
from bannertrack.clicks.replay import SpoolReplay
from bannertrack.clicks.spool import Spool
from bannertrack.db.engine import DbTimeouts, create_engine
from bannertrack.db.repository import SqlRepository
from bannertrack.db.tables import clicks
from bannertrack.errors import UnavailableError
from bannertrack.models import BannerCreate, ClickIn, RecordedClick, SpooledClick
from bannertrack.outage import DatabaseState

BANNER = BannerCreate(name="a", image_url="https://a.example/i", target_url="https://a.example/")
T0 = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


def workload(banners: list[int], n: int) -> list[ClickIn]:
    """Clicks in time order: visitors coming back within and after the window, bots."""
    out = []
    for i in range(n):
        out.append(
            ClickIn(
                banner_id=banners[i % len(banners)],
                occurred_at=T0 + timedelta(seconds=7 * i),
                user_agent="bot/1" if i % 11 == 0 else "Mozilla/5.0",
                visitor=f"v{i % 13}",
                bot=i % 11 == 0,
                bot_reason="crawler" if i % 11 == 0 else None,
            )
        )
    return out


class Parts:
    def __init__(self, url: str, spool_dir: Path, state: DatabaseState) -> None:
        timeouts = DbTimeouts(statement=1, connect=1, pool=1)
        self.sql = SqlRepository.from_url(url, timeouts=timeouts, dedup_window=600)
        self.repo = CachedRepository(self.sql, MemoryCache(), database=state)
        self.spool = Spool(spool_dir, max_bytes=10_000_000)
        self.ingest = ClickIngest(self.repo, spool=self.spool, state=state, spool_after=0.3)
        self.replay = SpoolReplay(self.spool, self.repo, state, interval=0.05)


@pytest.fixture
async def parts(
    proxied_url: tuple[str, TcpProxy], tmp_path: Path
) -> AsyncIterator[tuple[Parts, TcpProxy, DatabaseState]]:
    url, proxy = proxied_url
    state = DatabaseState()
    p = Parts(url, tmp_path / "spool", state)
    await p.spool.open()
    await p.ingest.start()
    try:
        yield p, proxy, state
    finally:
        proxy.start()
        proxy.thaw()
        await p.ingest.stop()
        await p.replay.stop()
        await p.spool.close()
        await p.sql.close()


async def stored_like(postgres: PostgresFactory, batch: list[ClickIn], banners: int) -> list[bool]:
    """The repeat flags a database that never went away gives the same clicks."""
    url = postgres.create()
    repo = SqlRepository.from_url(url, dedup_window=600)
    try:
        for _ in range(banners):
            await repo.create_banner(BANNER)
        flags: list[bool] = []
        for i in range(0, len(batch), 10):
            flags += [r.repeat for r in await repo.record_clicks(batch[i : i + 10]) if r]
        return flags
    finally:
        await repo.close()
        postgres.drop(url)


async def flags_in_order(url: str) -> list[bool]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(clicks.c.repeat).order_by(clicks.c.occurred_at))
            return [bool(r) for (r,) in rows]
    finally:
        await engine.dispose()


async def count_clicks(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(clicks))).scalar_one())
    finally:
        await engine.dispose()


async def test_clicks_during_an_outage_are_spooled_then_replayed_exactly_once(
    parts: tuple[Parts, TcpProxy, DatabaseState],
    proxied_url: tuple[str, TcpProxy],
    postgres: PostgresFactory,
) -> None:
    p, proxy, state = parts
    url, _ = proxied_url
    banners = [(await p.repo.create_banner(BANNER)).id for _ in range(3)]
    batch = workload(banners, 120)
    before, during, after = batch[:40], batch[40:90], batch[90:]
    answers = await asyncio.gather(*(p.ingest.record(c) for c in before))
    assert all(isinstance(a, RecordedClick) for a in answers)

    proxy.stop()
    started = time.monotonic()
    answers = [await p.ingest.record(c) for c in during]  # one at a time: many batches
    assert all(isinstance(a, SpooledClick) for a in answers)
    assert state.down and p.spool.clicks == 50
    assert time.monotonic() - started < 5  # once known down, no click waits for it
    with pytest.raises(UnavailableError):  # the database really is gone
        await p.sql.ping()

    proxy.start()
    await p.replay.start()
    # Clicks taken while the spool drains are spooled too (kept in order) or written live.
    answers = await asyncio.gather(*(p.ingest.record(c) for c in after))
    assert all(isinstance(a, RecordedClick | SpooledClick) for a in answers)
    deadline = time.monotonic() + 20
    while p.spool.batches or state.down:
        assert time.monotonic() < deadline, (p.spool.batches, state.down)
        await asyncio.sleep(0.05)

    assert await count_clicks(url) == 120
    assert await recount(url, dedup_window=600) == []
    assert await flags_in_order(url) == await stored_like(postgres, batch, 3)
    assert p.replay.replayed_clicks >= 50


async def test_a_replay_that_committed_is_never_committed_again(
    parts: tuple[Parts, TcpProxy, DatabaseState], proxied_url: tuple[str, TcpProxy]
) -> None:
    """A crash between the replay's commit and the spool's delete: the key says stored."""
    p, proxy, _ = parts
    url, _ = proxied_url
    banner = (await p.repo.create_banner(BANNER)).id
    proxy.stop()
    for c in workload([banner], 10):
        assert isinstance(await p.ingest.record(c), SpooledClick)
    proxy.start()
    oldest = await p.spool.oldest()
    assert oldest is not None
    # The replay's transaction commits, then the "crash": the spool still holds the batch.
    assert await p.repo.replay_clicks([(oldest.key, oldest.clicks())], oldest.in_doubt) == [True]
    assert await p.replay.drain(within=20)
    assert p.replay.skipped_batches == 1
    assert await count_clicks(url) == 10
    assert await recount(url, dedup_window=600) == []


async def test_an_in_doubt_batch_that_committed_is_not_stored_twice(
    parts: tuple[Parts, TcpProxy, DatabaseState], proxied_url: tuple[str, TcpProxy]
) -> None:
    """The live write committed but its answer was lost: the replay finds its clicks."""
    p, _, _ = parts
    url, _ = proxied_url
    banner = (await p.repo.create_banner(BANNER)).id
    batch = workload([banner], 8)
    await p.sql.record_clicks(batch)  # committed...
    key = await p.spool.append_clicks(batch, in_doubt=True)  # ...and spooled in doubt
    assert key
    assert await p.replay.drain(within=20)
    assert await count_clicks(url) == 8
    # The negative control: the same batch *not* in doubt is stored again.
    await p.spool.append_clicks(batch, in_doubt=False)
    assert await p.replay.drain(within=20)
    assert await count_clicks(url) == 16


async def test_a_frozen_database_spools_in_doubt_and_the_late_commit_wins(
    parts: tuple[Parts, TcpProxy, DatabaseState], proxied_url: tuple[str, TcpProxy]
) -> None:
    """Frozen mid-write: the click is answered from the spool after spool_after; when
    the database thaws, the live write commits and the spool's copy is dropped."""
    p, proxy, state = parts
    url, _ = proxied_url
    banner = (await p.repo.create_banner(BANNER)).id
    click = workload([banner], 1)[0]
    assert isinstance(await p.ingest.record(click), RecordedClick)  # warm the pool
    proxy.freeze()
    started = time.monotonic()
    answer = await p.ingest.record(click)
    assert isinstance(answer, SpooledClick) and time.monotonic() - started < 1.0
    assert state.down and p.spool.batches == 1
    proxy.thaw()
    await p.replay.start()
    deadline = time.monotonic() + 20
    while p.spool.batches or state.down:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert await count_clicks(url) == 2


async def test_the_spool_survives_its_process_and_each_process_has_its_own(
    tmp_path: Path,
) -> None:
    first = Spool(tmp_path, max_bytes=10_000)
    second = Spool(tmp_path, max_bytes=10_000)
    await first.open()
    await second.open()
    try:
        assert first.path != second.path  # two live processes never share a file
        batch = workload([1], 5)
        await first.append_clicks(batch, in_doubt=False)
        with pytest.raises(UnavailableError):  # bounded
            await first.append_clicks(workload([1], 200), in_doubt=False)
    finally:
        await first.close()
    again = Spool(tmp_path, max_bytes=10_000)
    await again.open()  # takes the file the first one left (its lock died with it)
    try:
        assert again.path == first.path and again.clicks == 5
        oldest = await again.oldest()
        assert oldest is not None and oldest.clicks() == batch
    finally:
        await again.close()
        await second.close()


async def test_removing_a_replayed_run_is_one_commit(tmp_path: Path) -> None:
    """Removing the batches a replay stored is one transaction (one fsync), not one per
    batch: in SQLite's autocommit mode ``with db:`` opened none, and removing a run of
    2,000 took 2.3 s while every click spooled meanwhile waited behind it."""
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000)
    await spool.open()
    try:
        click = ClickIn(banner_id=1, occurred_at=T0, visitor="v")
        for _ in range(200):
            await spool.append_clicks([click], in_doubt=False)
        assert spool.path is not None
        # Another connection's checkpoint empties the WAL, then reports the frames written.
        with contextlib.closing(sqlite3.connect(spool.path)) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await spool.remove_many([b.seq for b in await spool.oldest_run(200)])
            _, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert spool.batches == 0
        assert frames < 100  # the pages touched, once; a commit per batch wrote 200 and more
    finally:
        await spool.close()
