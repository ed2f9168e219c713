"""``ConversionBatches``: who writes which batch, and what each report is answered.

The writers here are plain async functions that record what they were given (the
batcher's seam: the repository passes its transaction functions). The database side of a
batch, on SQLite and PostgreSQL, is tests/integration/test_conversion_batches.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from bannertrack.conversions.values import Conversion, ConversionIn, Recorded
from bannertrack.db.conversion_batches import ConversionBatches, Item
from bannertrack.db.conversion_writes import Outcome
from bannertrack.errors import NotFoundError, UnavailableError

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
WINDOW = timedelta(days=30)


def report(n: int) -> ConversionIn:
    return ConversionIn(
        click_id=f"{n:022d}", goal="sale", value_micros=None, currency=None, occurred_at=NOW
    )


def recorded(data: ConversionIn) -> Recorded:
    conversion = Conversion(
        id=int(data.click_id),
        click_id=data.click_id,
        goal=data.goal,
        banner_id=1,
        placement_id=None,
        value=None,
        currency=None,
        occurred_at=data.occurred_at,
    )
    return Recorded(conversion=conversion, created=True)


class Store:
    """Writes batches; each waits for ``release`` so the test decides when it commits."""

    def open(self) -> None:
        self.release.set()
        for gate in self.gates:
            gate.set()

    def __init__(self, fail_batches: BaseException | None = None) -> None:
        self.batches: list[list[str]] = []
        self.alone: list[str] = []
        self.finished: list[int] = []
        self.release = asyncio.Event()  # set: every batch commits at once
        self.gates: list[asyncio.Event] = []  # else each batch waits for its own
        self.fail_batches = fail_batches

    async def write_batch(self, batch: Sequence[Item]) -> list[Outcome]:
        self.batches.append([d.click_id for d, _ in batch])
        gate = asyncio.Event()
        self.gates.append(gate)
        if not self.release.is_set():
            await gate.wait()
        self.finished.append(len(self.batches))
        if self.fail_batches is not None:
            raise self.fail_batches
        return [
            NotFoundError("no click") if d.click_id.endswith("404") else recorded(d)
            for d, _ in batch
        ]

    async def write_one(self, item: Item) -> Recorded:
        self.alone.append(item[0].click_id)
        if item[0].click_id.endswith("13"):
            raise ValueError("this report alone fails")
        return recorded(item[0])


async def _until(condition: object) -> None:
    for _ in range(1000):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


async def test_reports_that_wait_while_a_batch_commits_form_the_next_batch() -> None:
    store = Store()
    batches = ConversionBatches(store.write_batch, store.write_one, max_batch=3)
    first = asyncio.create_task(batches.record(report(1), WINDOW))
    await _until(lambda: store.batches == [[f"{1:022d}"]])
    later = [asyncio.create_task(batches.record(report(n), WINDOW)) for n in range(2, 7)]
    await _until(lambda: batches.queued == 5)
    store.open()
    answers = await asyncio.gather(first, *later)
    assert [a.conversion.id for a in answers] == [1, 2, 3, 4, 5, 6]
    # One alone (nothing waited), then the five that waited, at most three a batch.
    assert [len(b) for b in store.batches] == [1, 3, 2]


async def test_a_refused_report_refuses_only_itself() -> None:
    store = Store()
    store.release.set()
    batches = ConversionBatches(store.write_batch, store.write_one)
    found, missing = await asyncio.gather(
        batches.record(report(7), WINDOW),
        batches.record(report(404), WINDOW),
        return_exceptions=True,
    )
    assert isinstance(found, Recorded) and isinstance(missing, NotFoundError)


async def test_a_failed_batch_is_written_again_one_report_at_a_time() -> None:
    store = Store(fail_batches=RuntimeError("one row the database refused"))
    store.release.set()
    batches = ConversionBatches(store.write_batch, store.write_one)
    answers = await asyncio.gather(
        *(batches.record(report(n), WINDOW) for n in (11, 12, 13)), return_exceptions=True
    )
    assert [len(b) for b in store.batches] == [1, 2]  # 11 alone first, then 12 and 13
    assert isinstance(answers[0], RuntimeError)  # a batch of one is not tried twice
    assert store.alone == [f"{n:022d}" for n in (12, 13)]
    assert isinstance(answers[1], Recorded) and isinstance(answers[2], ValueError)


async def test_an_unavailable_database_answers_every_report_of_the_batch() -> None:
    store = Store(fail_batches=UnavailableError("database down"))
    store.release.set()
    batches = ConversionBatches(store.write_batch, store.write_one)
    answers = await asyncio.gather(
        *(batches.record(report(n), WINDOW) for n in (21, 22)), return_exceptions=True
    )
    assert all(isinstance(a, UnavailableError) for a in answers) and store.alone == []


async def test_a_report_cancelled_while_waiting_is_never_written() -> None:
    store = Store()
    batches = ConversionBatches(store.write_batch, store.write_one)
    first = asyncio.create_task(batches.record(report(31), WINDOW))
    await _until(lambda: len(store.batches) == 1)
    gone = asyncio.create_task(batches.record(report(32), WINDOW))
    kept = asyncio.create_task(batches.record(report(33), WINDOW))
    await _until(lambda: batches.queued == 2)
    gone.cancel()
    store.open()
    assert (await first).created and (await kept).created
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert store.batches == [[f"{31:022d}"], [f"{33:022d}"]]


async def test_a_batch_being_written_is_finished_when_its_writer_goes_away() -> None:
    store = Store()
    batches = ConversionBatches(store.write_batch, store.write_one)
    leader = asyncio.create_task(batches.record(report(41), WINDOW))
    await _until(lambda: len(store.batches) == 1)
    leader.cancel()
    follower = asyncio.create_task(batches.record(report(42), WINDOW))
    store.open()
    assert (await follower).created
    await _until(lambda: len(store.finished) == 2)  # the first batch ran to its end too
    assert store.batches == [[f"{41:022d}"], [f"{42:022d}"]]


async def test_reports_in_a_batch_whose_writer_went_away_wait_for_its_answers() -> None:
    store = Store()
    batches = ConversionBatches(store.write_batch, store.write_one)
    first = asyncio.create_task(batches.record(report(51), WINDOW))
    await _until(lambda: len(store.batches) == 1)
    leader = asyncio.create_task(batches.record(report(52), WINDOW))
    member = asyncio.create_task(batches.record(report(53), WINDOW))
    await _until(lambda: batches.queued == 2)
    store.gates[0].set()  # the first batch commits; 52's turn writes 52 and 53
    await _until(lambda: len(store.batches) == 2)
    leader.cancel()  # its client goes away while its batch is written
    await _until(lambda: leader.done())
    assert not member.done() and store.batches[1] == [f"{52:022d}", f"{53:022d}"]
    store.gates[1].set()
    assert (await first).created and (await member).created
    assert len(store.batches) == 2  # 53 waited for its batch, it did not write another
