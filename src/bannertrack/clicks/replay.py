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
import time
from collections.abc import Callable

from bannertrack.clicks.spool import Spool, SpooledBatch
from bannertrack.errors import TransientError, UnavailableError
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
        max_clicks: int = 2000,
        on_replayed: Callable[[int], None] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._spool = spool
        self._target = target
        self._state = state
        self._interval = interval
        self._max_clicks = max_clicks
        self._limit = max_clicks  # 1 after a run failed: find the batch it refuses
        self._on_replayed = on_replayed
        self._sleep = sleep
        self._task = BackgroundTask(self._run, name="bannertrack-spool-replay")
        self.replayed_clicks = 0
        self.replayed_batches = 0
        self.skipped_batches = 0  # found stored already (a crash after a commit)
        self.last_replay_at: float | None = None  # Unix time batches last left the spool

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
        """Replay the oldest batches, or ping; True when batches left the spool.

        Click batches that follow each other (none in doubt) go in one transaction, up
        to ``max_clicks``: the spool drains faster than the writer fills it with the
        small batches an outage forms, so it empties even under steady load.
        """
        run = await self._spool.oldest_run(self._limit)
        if not run:
            if self._state.down:
                await self._ping()
            return False
        if self._spool.held(run[0].key):
            return False  # a live write of it is still running: its outcome decides
        try:
            stored = await self._replay(run)
        except TransientError as exc:
            # Cancelled (a deadlock): stored nothing, and neither an outage nor a refusal
            # (set aside, its clicks would be lost to the counts): the next step retries.
            log.warning("spool replay cancelled by the database; retrying: %s", exc)
            return False
        except UnavailableError as exc:
            self._state.failed(str(exc))
            return False
        except Exception as exc:
            if len(run) > 1:  # find the batch it refuses: one at a time next
                log.warning("replaying %d batches together failed (%r); one by one", len(run), exc)
                self._limit = 1
                return False
            log.error("spooled batch %s refused by the database; set aside: %r", run[0].key, exc)
            await self._spool.reject(run[0], repr(exc))
            self._limit = self._max_clicks
            return True
        self._state.answered()
        self._limit = self._max_clicks
        await self._spool.remove_many([b.seq for b in run])
        self.last_replay_at = time.time()
        for batch, fresh in zip(run, stored, strict=True):
            if not fresh:
                self.skipped_batches += 1
                continue
            self.replayed_batches += 1
            if batch.kind == "clicks":
                self.replayed_clicks += batch.items
                if self._on_replayed is not None:
                    self._on_replayed(batch.items)
        return True

    async def _replay(self, run: list[SpooledBatch]) -> list[bool]:
        if run[0].kind == "impressions":
            return [await self._target.replay_impressions(run[0].key, run[0].impressions())]
        groups = [(b.key, b.clicks()) for b in run]
        return await self._target.replay_clicks(groups, run[0].in_doubt)

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
