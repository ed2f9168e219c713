"""ClickIngest mechanics: batching, acknowledgement, failure, backpressure, shutdown.

The repository here is a stand-in that the test steers (hold a batch, fail a batch):
no real database can be told "stay inside this commit until I say so". The same
behaviour against SQLite and PostgreSQL is in tests/integration/test_ingest.py.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from bannertrack.clicks.ingest import ClickIngest, ShuttingDownError
from bannertrack.errors import DatabaseUnavailableError, OverloadedError
from bannertrack.models import ClickIn, RecordedClick

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def click(n: int = 0, banner_id: int = 1) -> ClickIn:
    return ClickIn(banner_id=banner_id, occurred_at=T0, referrer=f"r{n}")


class SteeredRepo:
    """Records each batch; ``gate`` holds batches; ``fail_next`` makes one batch raise."""

    def __init__(self) -> None:
        self.batches: list[list[ClickIn]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()
        self.fail_next: BaseException | None = None
        self.wrong_length = False
        self._next_id = 0

    async def record_clicks(self, clicks: Sequence[ClickIn]) -> list[RecordedClick | None]:
        self.entered.set()
        await self.gate.wait()
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        self.batches.append(list(clicks))
        out: list[RecordedClick | None] = []
        for c in clicks:
            self._next_id += 1
            out.append(RecordedClick(id=self._next_id, banner_id=c.banner_id, occurred_at=T0))
        return out[:-1] if self.wrong_length else out


@pytest.fixture
def repo() -> SteeredRepo:
    return SteeredRepo()


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Whatever the loop would log as an error (e.g. "exception was never retrieved")."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    old = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: seen.append(ctx))
    try:
        yield seen
    finally:
        loop.set_exception_handler(old)


async def started(repo: SteeredRepo, **kw: Any) -> ClickIngest:
    ingest = ClickIngest(repo, **kw)  # type: ignore[arg-type]
    await ingest.start()
    return ingest


async def test_concurrent_clicks_share_few_transactions(repo: SteeredRepo) -> None:
    ingest = await started(repo, max_batch=100, max_wait=0.002)
    repo.gate.clear()
    tasks = [asyncio.create_task(ingest.record(click(i))) for i in range(500)]
    await repo.entered.wait()
    repo.gate.set()
    results = await asyncio.gather(*tasks)
    await ingest.stop()
    assert [r.id for r in results if r] == sorted(r.id for r in results if r)  # queue order
    assert len({r.id for r in results if r}) == 500
    assert sum(len(b) for b in repo.batches) == 500
    assert len(repo.batches) <= 6  # 500 / max_batch 100, plus the first one
    assert max(len(b) for b in repo.batches) <= 100


async def test_lone_click_does_not_wait_for_the_linger(repo: SteeredRepo) -> None:
    ingest = await started(repo, max_wait=5.0)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await ingest.record(click()) is not None
    assert loop.time() - t0 < 1.0
    await ingest.stop()


async def test_acknowledged_only_after_the_batch_returns(repo: SteeredRepo) -> None:
    ingest = await started(repo)
    repo.gate.clear()
    task = asyncio.create_task(ingest.record(click()))
    await repo.entered.wait()
    # A gap on purpose, for a negative check: an acknowledgement sent before the batch
    # returns would land in it. With the gate shut, a correct writer is never done.
    await asyncio.sleep(0.01)
    assert not task.done()  # the "commit" has not returned yet
    repo.gate.set()
    assert (await task) is not None
    await ingest.stop()


async def test_failed_batch_answers_every_click_with_the_error_and_writer_lives_on(
    repo: SteeredRepo,
) -> None:
    ingest = await started(repo)
    repo.fail_next = DatabaseUnavailableError("database unavailable: test")
    results = await asyncio.gather(
        *(ingest.record(click(i)) for i in range(50)), return_exceptions=True
    )
    assert all(isinstance(r, DatabaseUnavailableError) for r in results)
    assert repo.batches == []
    assert ingest.batches_failed == 1
    # The next batch goes through: ingest resumes by itself.
    assert await ingest.record(click()) is not None
    await ingest.stop()


async def test_unexpected_error_and_wrong_result_count_do_not_kill_the_writer(
    repo: SteeredRepo,
) -> None:
    ingest = await started(repo, on_batch=lambda n, s: 1 / 0)
    repo.fail_next = RuntimeError("bug")
    with pytest.raises(RuntimeError, match="bug"):
        await ingest.record(click())
    repo.wrong_length = True
    with pytest.raises(RuntimeError, match="results"):
        await ingest.record(click())
    repo.wrong_length = False
    # on_batch raises on every batch: logged, the click is still acknowledged.
    assert await ingest.record(click()) is not None
    await ingest.stop()


async def test_cancelled_waiter_leaves_no_unretrieved_exception(
    repo: SteeredRepo, loop_errors: list[dict[str, Any]]
) -> None:
    ingest = await started(repo)
    repo.gate.clear()
    waiter = asyncio.create_task(ingest.record(click()))
    await repo.entered.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    repo.fail_next = DatabaseUnavailableError("database unavailable: test")
    repo.gate.set()
    await ingest.stop()
    del waiter
    gc.collect()
    await asyncio.sleep(0)
    assert loop_errors == []


async def test_click_of_a_cancelled_waiter_is_still_written(repo: SteeredRepo) -> None:
    ingest = await started(repo)
    repo.gate.clear()
    first = asyncio.create_task(ingest.record(click(1)))
    await repo.entered.wait()
    gone = asyncio.create_task(ingest.record(click(2)))  # queued behind the held batch
    await asyncio.sleep(0)
    gone.cancel()
    repo.gate.set()
    await first
    await ingest.stop()
    assert [c.referrer for b in repo.batches for c in b] == ["r1", "r2"]


async def test_full_queue_refuses_at_once(repo: SteeredRepo) -> None:
    ingest = await started(repo, max_batch=2, max_queue=5)
    repo.gate.clear()
    in_batch = [asyncio.create_task(ingest.record(click(i))) for i in range(2)]
    await repo.entered.wait()  # two clicks are in the held batch, the queue is empty
    queued = [asyncio.create_task(ingest.record(click(i))) for i in range(5)]
    await asyncio.sleep(0)
    assert ingest.queued == 5
    with pytest.raises(OverloadedError):
        await ingest.record(click())
    repo.gate.set()
    assert all(r is not None for r in await asyncio.gather(*in_batch, *queued))
    await ingest.stop()


async def test_stop_drains_the_queue_then_refuses(repo: SteeredRepo) -> None:
    ingest = await started(repo, max_batch=10)
    repo.gate.clear()
    tasks = [asyncio.create_task(ingest.record(click(i))) for i in range(35)]
    await repo.entered.wait()
    stopping = asyncio.create_task(ingest.stop())
    await asyncio.sleep(0)
    with pytest.raises(ShuttingDownError):
        await ingest.record(click())
    repo.gate.set()
    await stopping
    assert all(t.result() is not None for t in tasks)
    assert sum(len(b) for b in repo.batches) == 35


async def test_stop_gives_up_after_drain_timeout_and_answers_everyone(repo: SteeredRepo) -> None:
    ingest = await started(repo, max_batch=10, drain_timeout=0.2)
    repo.gate.clear()  # the database never answers
    tasks = [asyncio.create_task(ingest.record(click(i))) for i in range(25)]
    await repo.entered.wait()
    await ingest.stop()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, ShuttingDownError) for r in results)
    assert repo.batches == []


def test_rejects_nonsense_bounds(repo: SteeredRepo) -> None:
    for kw in ({"max_batch": 0}, {"max_queue": 0}, {"max_wait": -1.0}):
        with pytest.raises(ValueError, match="max_batch"):
            ClickIngest(repo, **kw)  # type: ignore[arg-type]
