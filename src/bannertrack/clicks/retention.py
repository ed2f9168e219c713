"""Background retention: raw clicks older than the retention period are deleted.

Only raw clicks go (they hold user agents, referrers and visitor keys); the rollups
that every count is read from stay, so no total, series or top list changes when a
click ages out. Deleting happens in statements of at most ``batch`` rows with a pause
between them, so a first run over years of clicks never holds long locks or starves the
click writer. The same task forgets visitors whose dedup window is over
(``visitor_clicks``): after the window they can no longer make a click a repeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bannertrack.errors import UnavailableError
from bannertrack.repository import Housekeeping
from bannertrack.tasks import BackgroundTask, Lifecycle, Sleep, every
from bannertrack.timeutil import utcnow

log = logging.getLogger("bannertrack.clicks.retention")


@dataclass(slots=True)
class RetentionRun:
    clicks_deleted: int = 0
    visitors_forgotten: int = 0


class Retention(Lifecycle):
    def __init__(
        self,
        database: Housekeeping,
        *,
        retention_days: int,
        dedup_window: float,
        interval: float = 3600.0,
        batch: int = 5000,
        pause: float = 0.05,
        clock: Callable[[], datetime] = utcnow,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._db = database
        self._keep = timedelta(days=retention_days)
        self._window = timedelta(seconds=dedup_window)
        self._interval = interval
        self._batch = batch
        self._pause = pause
        self._clock = clock
        self._sleep = sleep
        body = every(interval, self.run_once, on_error=_run_failed, sleep=sleep, first=True)
        self._task = BackgroundTask(body, name="bannertrack-retention")
        self.runs = 0
        self.last = RetentionRun()

    async def start(self) -> None:
        await self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def run_once(self) -> RetentionRun:
        """One full pass; each statement is bounded, the pass runs until nothing is left."""
        now = self._clock()
        run = RetentionRun()
        cutoff = now - self._keep
        for banner_id in await self._db.banner_ids():
            while True:
                n = await self._db.delete_clicks_before(banner_id, cutoff, self._batch)
                run.clicks_deleted += n
                if n < self._batch:
                    break
                await self._sleep(self._pause)
        while True:
            n = await self._db.purge_visitors(now - self._window, self._batch)
            run.visitors_forgotten += n
            if n < self._batch:
                break
            await self._sleep(self._pause)
        self.runs += 1
        self.last = run
        if run.clicks_deleted or run.visitors_forgotten:
            log.info(
                "retention: deleted %d raw clicks older than %s, forgot %d visitors",
                run.clicks_deleted,
                cutoff.date().isoformat(),
                run.visitors_forgotten,
            )
        return run


def _run_failed(exc: Exception) -> None:
    if isinstance(exc, UnavailableError):
        log.warning("retention run skipped: %s", exc)
    else:
        log.error("retention run failed", exc_info=exc)
