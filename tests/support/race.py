"""Reads forced to race a write: the negative controls' gate, independent of timing.

A naive cache (load, then store whatever came back) goes stale only when a write
commits and invalidates between a load's read and its store. ``SlowReads`` makes that
likely by answering late at random, so whether a naive cache is caught depended on how
fast the database wrote (a faster click path closed the window). ``RacedReads`` makes it
certain: every read's result is handed back only after a write that *began after the
read* has been acknowledged (its commit and its invalidation done), so every load a
cache stores is older than an acknowledged write.
"""

from __future__ import annotations

import asyncio

from bannertrack.repository import Repository
from tests.support.slow import SlowReads


class WriteRace:
    """Numbers writes as they begin; lets readers wait for a later write's acknowledgement."""

    def __init__(self) -> None:
        self._begun = 0
        self._acked = 0  # the highest number of an acknowledged write
        self._closed = False
        self._changed = asyncio.Condition()

    def begin(self) -> int:
        self._begun += 1
        return self._begun

    async def acked(self, write: int) -> None:
        """Call once the write returned and the harness counted it as acknowledged."""
        async with self._changed:
            self._acked = max(self._acked, write)
            self._changed.notify_all()

    async def close(self) -> None:
        """No more writes: release every waiting read (nothing is left to race)."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    async def after_a_later_write(self) -> None:
        """Wait until a write that began after this call has been acknowledged."""
        seen = self._begun
        async with self._changed:
            await self._changed.wait_for(lambda: self._closed or self._acked > seen)


class RacedReads(SlowReads):
    """``SlowReads`` whose delay is the race itself: each read waits for a later write."""

    def __init__(self, inner: Repository, race: WriteRace) -> None:
        super().__init__(inner)
        self.race = race

    async def _late(self) -> None:
        await self.race.after_a_later_write()
