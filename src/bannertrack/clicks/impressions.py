"""Impressions are summed in memory per (banner, minute) and written once per interval.

A pixel request (or a placement's serve) only adds one to a counter and is answered at
once; a writer task hands whatever was summed to ``Repository.record_impressions`` every
``interval`` seconds, in one transaction, however many requests there were. Impressions are thus
counted best-effort: a GIF is answered before its impression is stored, and a crash
loses at most the last interval (a graceful stop writes everything first). Clicks,
which are worth money, get the stronger promise of ``ClickIngest`` instead.

A write that fails (database down) goes to the spool when there is one (PostgreSQL:
``clicks/spool.py``, replayed exactly once like clicks), and while the database is known
down the counts go there without trying it; without a spool, or when the spool cannot
take them, the counts are put back, so they go out with the next write. A flush the
database cancelled (``TransientError``: a deadlock with a click batch) stored nothing:
its counts are put back too, never spooled (the database is there), and go out with the
next flush, neither lost nor counted twice. What is pending
is bounded by ``max_pending`` (banner, minute) pairs; beyond it new impressions are
counted in ``dropped`` and not kept, so an outage cannot eat the memory of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from bannertrack.clicks.spool import Spool
from bannertrack.errors import TransientError, UnavailableError
from bannertrack.models import ImpressionCount
from bannertrack.outage import DatabaseState
from bannertrack.repository import Repository
from bannertrack.tasks import BackgroundTask, Lifecycle
from bannertrack.timeutil import floor_to, utcnow

log = logging.getLogger("bannertrack.clicks.impressions")
_MINUTE = timedelta(minutes=1)


class ImpressionBatcher(Lifecycle):
    def __init__(
        self,
        repository: Repository,
        *,
        interval: float = 0.5,
        max_pending: int = 100_000,
        clock: Callable[[], datetime] = utcnow,
        on_flush: Callable[[int], None] | None = None,
        drain_timeout: float = 10.0,
        spool: Spool | None = None,
        state: DatabaseState | None = None,
    ) -> None:
        if interval <= 0 or max_pending < 1:
            raise ValueError("need interval > 0 and max_pending >= 1")
        self._repo = repository
        self._interval = interval
        self._max_pending = max_pending
        self._clock = clock
        self._on_flush = on_flush  # called with the number of impressions written
        self._drain_timeout = drain_timeout
        self._spool = spool
        self._state = state or DatabaseState()
        # (banner, placement or None, minute): a placement's serves also feed its rollup.
        self._pending: Counter[tuple[int, int | None, datetime]] = Counter()
        # The current minute and the next one's start: rounding each serve's time cost
        # more than the rest of ``add``.
        self._minute: tuple[datetime, datetime] | None = None
        self._task = BackgroundTask(self._run, name="bannertrack-impressions")
        self._stopping = asyncio.Event()
        # Running totals for tests, metrics and benchmarks.
        self.counted = 0
        self.written = 0
        self.dropped = 0
        self.flushes_failed = 0

    @property
    def pending(self) -> int:
        return sum(self._pending.values())

    def add(self, banner_id: int, placement_id: int | None = None) -> None:
        """Count one impression now (served by ``placement_id``, if any); never blocks,
        never fails the request."""
        now = self._clock()
        minute = self._minute
        if minute is None or not minute[0] <= now < minute[1]:
            start = floor_to(now, 60)
            minute = self._minute = (start, start + _MINUTE)
        key = (banner_id, placement_id, minute[0])
        if key not in self._pending and len(self._pending) >= self._max_pending:
            self.dropped += 1
            return
        self._pending[key] += 1
        self.counted += 1

    async def start(self) -> None:
        if not self._task.running:
            self._stopping.clear()
            await self._task.start()

    async def stop(self) -> None:
        """Write what is pending, then stop; gives up after ``drain_timeout`` seconds."""
        if not self._task.running:
            return
        self._stopping.set()
        try:
            if not await self._task.join(self._drain_timeout):
                log.error(
                    "impressions not written in %ss; %d lost", self._drain_timeout, self.pending
                )
        finally:
            # On a timeout, or when our caller is cancelled: never leave it unattended.
            await self._task.stop()

    async def flush(self) -> int:
        """Write what is pending now; returns how many impressions were written."""
        if not self._pending:
            return 0
        batch, self._pending = self._pending, Counter()
        counts = [
            ImpressionCount(banner_id=b, minute=m, count=n, placement_id=p)
            for (b, p, m), n in sorted(batch.items(), key=lambda kv: (kv[0][0], kv[0][2]))
        ]
        try:
            if self._spool is not None and self._state.down:
                await self._spool.append_impressions(counts)
            else:
                await self._write(counts)
        except Exception as exc:
            self.flushes_failed += 1
            if isinstance(exc, UnavailableError):
                log.warning("impressions not written, retrying next flush: %s", exc)
            else:
                log.exception("impressions not written, retrying next flush")
            self._pending.update(batch)  # back in line; the bound applies to new keys only
            return 0
        written = sum(batch.values())
        self.written += written
        if self._on_flush is not None:
            self._on_flush(written)
        return written

    async def _write(self, counts: list[ImpressionCount]) -> None:
        try:
            await self._repo.record_impressions(counts)
        except TransientError:
            raise  # not an outage: flush() puts the counts back for the next write
        except UnavailableError as exc:
            if self._spool is None:
                raise
            self._state.failed(str(exc))
            await self._spool.append_impressions(counts)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
            await self.flush()
        if self._pending:
            log.error("stopping with %d impressions not written (database down?)", self.pending)
