"""Replay: the spool drained into the database, oldest batch first, each exactly once.

A ``BackgroundTask`` loops: while the spool holds batches it replays the oldest (one
transaction with the batch's key, ``ReplayTarget``), removes it from the spool once that
has committed, and takes the next at once; when the database cannot answer it says so to
``DatabaseState`` and tries again after ``interval``. With nothing spooled and the
database known down, it pings, so the others learn that it answers again.

Oldest first, and the click writer spools every batch while anything is spooled (see
``ClickIngest``): clicks reach the database in the order they were taken, so repeat flags
come out as they would have without the outage. A crash at any point loses nothing and
doubles nothing: before the commit, the batch is still spooled; after it, the key is in
the database and a second replay stores nothing (it only removes the spool's copy).

A batch the database refuses for another reason than being unavailable (a bug, a value
it cannot store) is set aside in the spool file's ``rejected`` table with the error, and
logged; the rest goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from bannertrack.clicks.spool import Spool, SpooledBatch
from bannertrack.errors import UnavailableError
from bannertrack.outage import DatabaseState
from bannertrack.repository import ReplayTarget
from bannertrack.tasks import BackgroundTask, Lifecycle, Sleep

log = logging.getLogger("bannertrack.clicks.replay")


class SpoolReplay(Lifecycle):
    def __init__(
        self,
        spool: Spool,
        target: ReplayTarget,
        state: DatabaseState,
        *,
        interval: float = 0.5,
        on_replayed: Callable[[int], None] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._spool = spool
        self._target = target
        self._state = state
        self._interval = interval
        self._on_replayed = on_replayed
        self._sleep = sleep
        self._task = BackgroundTask(self._run, name="bannertrack-spool-replay")
        self.replayed_clicks = 0
        self.replayed_batches = 0
        self.skipped_batches = 0  # found stored already (a crash after a commit)

    async def start(self) -> None:
        await self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self) -> None:
        while True:
            try:
                progressed = await self.step()
            except Exception:
                log.exception("spool replay failed; trying again")
                progressed = False
            if not progressed:
                await self._sleep(self._interval)

    async def step(self) -> bool:
        """Replay the oldest batch, or ping; True when a batch left the spool."""
        batch = await self._spool.oldest()
        if batch is None:
            if self._state.down:
                await self._ping()
            return False
        if self._spool.held(batch.key):
            return False  # a live write of it is still running: its outcome decides
        try:
            stored = await self._replay(batch)
        except UnavailableError as exc:
            self._state.failed(str(exc))
            return False
        except Exception as exc:
            log.error("spooled batch %s refused by the database; set aside: %r", batch.key, exc)
            await self._spool.reject(batch, repr(exc))
            return True
        self._state.answered()
        await self._spool.remove(batch.seq)
        if stored:
            self.replayed_batches += 1
            if batch.kind == "clicks":
                self.replayed_clicks += batch.items
                if self._on_replayed is not None:
                    self._on_replayed(batch.items)
        else:
            self.skipped_batches += 1
        return True

    async def _replay(self, batch: SpooledBatch) -> bool:
        if batch.kind == "impressions":
            return await self._target.replay_impressions(batch.key, batch.impressions())
        result = await self._target.replay_clicks(batch.key, batch.clicks(), batch.in_doubt)
        return bool(result)

    async def _ping(self) -> None:
        try:
            await self._target.ping()
        except UnavailableError:
            return
        self._state.answered()

    async def drain(self, within: float) -> bool:
        """Replay until the spool is empty (True) or ``within`` seconds pass (for tests)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self._spool.batches:
            if loop.time() > deadline:
                return False
            if not await self.step():
                await asyncio.sleep(0.05)
        return True
