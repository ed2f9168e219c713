"""ImpressionView: one query per refresh for every banner being read, none per read."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bannertrack.caching.impression_view import ImpressionView


class Totals:
    """The database side: totals per banner, and every batch of ids asked for."""

    def __init__(self, **totals: int) -> None:
        self.totals = {int(k[1:]): v for k, v in totals.items()}
        self.asked: list[list[int]] = []

    async def load_many(self, ids: Sequence[int]) -> dict[int, int]:
        self.asked.append(list(ids))
        await asyncio.sleep(0.001)  # a query takes time: concurrent reads must share it
        return {i: self.totals[i] for i in ids if i in self.totals}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_reads_cost_no_query_after_the_first() -> None:
    db = Totals(b1=5, b2=7)
    view = ImpressionView(db.load_many, clock=Clock())
    results = await asyncio.gather(*(view.get(1) for _ in range(50)))
    assert set(results) == {5} and db.asked == [[1]]  # single flight for a new banner
    assert await view.get(1) == 5 and db.asked == [[1]]
    assert await view.get(3) is None  # no such banner


async def test_one_refresh_reads_every_watched_banner_at_once() -> None:
    db = Totals(b1=5, b2=7)
    view = ImpressionView(db.load_many, page_size=1000, clock=Clock())
    view.seed(1, 5)
    await view.get(2)
    db.asked.clear()
    db.totals.update({1: 9, 2: 8})
    await view.refresh_once()
    assert db.asked == [[1, 2]]
    assert (await view.get(1), await view.get(2)) == (9, 8)


async def test_totals_never_go_back_and_idle_banners_are_forgotten() -> None:
    clock = Clock()
    db = Totals(b1=5, b2=7)
    view = ImpressionView(db.load_many, forget_after=60, clock=clock)
    view.seed(1, 10)  # newer than what a slow refresh may bring
    await view.get(2)
    await view.refresh_once()
    assert await view.get(1) == 10
    clock.now += 30
    await view.get(1)
    clock.now += 45  # banner 2 not read for 75 s
    db.asked.clear()
    await view.refresh_once()
    assert db.asked == [[1]] and len(view) == 1


async def test_deleted_banners_drop_out() -> None:
    db = Totals(b1=5)
    view = ImpressionView(db.load_many, clock=Clock())
    await view.get(1)
    del db.totals[1]
    await view.refresh_once()
    assert len(view) == 0
