"""Fake time for background loops: a ``sleep`` that returns only when the test moves time.

Pass ``FakeSleep()`` as the ``sleep`` of a component (``bannertrack.tasks.every``); the
test then calls ``await sleep.advance(seconds)``, which wakes every sleeper whose
deadline has passed and lets the loop run until each is asleep again. Nothing waits on
the wall clock, so the tests are as fast as the code and cannot flake on a busy machine.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class FakeSleep:
    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def sleepers(self) -> int:
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def __call__(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        await future

    async def settle(self, turns: int = 200) -> None:
        """Let woken tasks run until they sleep again (or ``turns`` loop turns pass)."""
        for _ in range(turns):
            await asyncio.sleep(0)

    async def wait_for_sleepers(self, n: int = 1) -> None:
        """Until ``n`` tasks sleep; fails instead of hanging when they never do."""
        for _ in range(10_000):
            if self.sleepers >= n:
                return
            await asyncio.sleep(0)
        raise AssertionError(f"expected {n} sleeping tasks, found {self.sleepers}")

    async def advance(self, seconds: float) -> None:
        """Move time on, wake the sleepers that are due, and let them run."""
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        await self.settle()
