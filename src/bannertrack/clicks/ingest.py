"""Group commit for clicks: many requests, one transaction, then the acknowledgements.

A click request puts its click on a bounded queue and waits. One writer task takes
whatever is queued (up to ``max_batch``) and hands the batch to
``Repository.record_clicks`` in one transaction. Only after that call returns (commit
done, and with a ``CachedRepository`` the batch's invalidations done) are the waiting
requests answered. So an acknowledged click is durable, and a read that starts after
the acknowledgement sees it.

Batching comes mostly by itself: while one batch commits, the clicks that arrive meanwhile
queue up and form the next batch. ``max_wait`` adds a short linger on top, and only when
there is concurrent traffic to gather (the last batch or the queue holds more than one
click): a lone click on an idle server is written at once instead of paying the linger.

Failure never turns into a silent drop:

- a batch that fails because the database cannot answer (``UnavailableError``) answers
  every click in it with the error (503); the writer lives on and the next batch tries the
  database again, so ingest resumes by itself when it returns;
- a batch the database cancelled for another transaction's sake (``TransientError``: a
  deadlock, a serialization failure) stored nothing and says nothing about its clicks:
  it is written again whole, up to ``TRANSIENT_RETRIES`` times after a short jittered
  pause (``batches_retried`` counts them), then answered 503 (not an outage: no spool,
  no "failing"), never 500. A one-click batch that lost a deadlock used to be taken for
  a click the database rejects, and its tracking link answered 500;
- a batch that fails for any other reason (one click the database rejects) is split in
  halves and each half retried, down to single clicks, so only the offending click fails.
  ``record_clicks`` is one transaction: a failed attempt stored nothing, so a retry never
  stores a click twice;
- a full queue refuses new clicks at once (``OverloadedError``: 503 + Retry-After)
  instead of growing memory;
- ``stop()`` refuses new clicks and drains the queue; if the drain outlives its timeout
  (say the database is down), the writer is cancelled and every click not yet answered
  gets ``ShuttingDownError``. A click in the batch being committed at that moment may
  be stored, but it is never acknowledged and then lost.

A request whose waiter is cancelled (the client went away) leaves its click in the
queue: it is stored with its batch, just not acknowledged.

With a ``Spool`` (PostgreSQL), a batch the database cannot take is not refused but
written to the instance's disk and acknowledged once durable there (``SpooledClick``):

- the live write is given ``spool_after`` seconds; one that fails as unavailable, or is
  still running then, is spooled *in doubt* (it may yet commit; the running write is
  left to finish and ``Spool.hold`` settles it), and ``DatabaseState`` learns the
  database is down;
- while the database is known down, or anything is spooled, every batch goes straight
  to the spool: no wait, and the replay (``clicks/replay.py``) stores them in the order
  they were taken;
- a full spool (or a disk that fails) answers 503 as without one.

Over 300 lines on purpose: the writer's loop, its linger, its failure rules and the
spool's hand-over are one state machine over one queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable

from bannertrack.clicks.spool import Spool
from bannertrack.errors import (
    TRANSIENT_RETRIES,
    OverloadedError,
    TransientError,
    UnavailableError,
    transient_pause,
)
from bannertrack.logs import RateLimitedLog
from bannertrack.models import ClickIn, RecordedClick, SpooledClick
from bannertrack.outage import DatabaseState
from bannertrack.repository import Repository
from bannertrack.tasks import BackgroundTask, Lifecycle

log = logging.getLogger("bannertrack.clicks.ingest")
# Under an outage every batch fails alike: one line per interval, with a count.
faults = RateLimitedLog(log)

Answer = RecordedClick | SpooledClick | None
Pending = tuple[ClickIn, "asyncio.Future[Answer]"]


class ShuttingDownError(UnavailableError):
    code = "shutting_down"


class ClickIngest(Lifecycle):
    def __init__(
        self,
        repository: Repository,
        *,
        max_batch: int = 1000,
        max_wait: float = 0.002,
        max_queue: int = 20_000,
        on_batch: Callable[[int, float], None] | None = None,
        drain_timeout: float | None = 30.0,
        spool: Spool | None = None,
        state: DatabaseState | None = None,
        spool_after: float = 0.2,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait < 0:
            raise ValueError("need max_batch >= 1, max_queue >= 1 and max_wait >= 0")
        self._repo = repository
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._max_queue = max_queue
        # Called with (clicks, seconds) after each committed batch.
        self._on_batch = on_batch
        self._drain_timeout = drain_timeout
        self._spool = spool
        self._state = state or DatabaseState()
        self._spool_after = spool_after
        self._queue: deque[Pending] = deque()
        self._wakeup = asyncio.Event()  # something was queued, or stop() was called
        self._full = asyncio.Event()  # a whole batch is queued: stop lingering
        self._closed = False
        self._writer = BackgroundTask(self._run, name="bannertrack-click-writer")
        self._last_batch = 0
        # The linger ends once this many clicks are queued (see _linger).
        self._target = max_batch
        # Running totals for /healthz and benchmarks: mean batch = clicks / batches.
        self.batches_written = 0
        self.clicks_written = 0
        self.batches_failed = 0
        self.clicks_failed = 0
        self.clicks_spooled = 0
        self.batches_retried = 0  # written again after a TransientError
        # loop.time() of the last write the database could not take (an outage, a full
        # disk, a read-only file) and of the last commit: /healthz reports a writer whose
        # latest attempt failed. A single rejected click is no outage and does not count.
        self.last_outage: float | None = None
        self.last_outage_error = ""
        self.last_success: float | None = None

    @property
    def queued(self) -> int:
        """Clicks waiting for a batch (not counting the batch being written)."""
        return len(self._queue)

    @property
    def max_queue(self) -> int:
        return self._max_queue

    async def start(self) -> None:
        if not self._writer.running:
            self._closed = False
            await self._writer.start()

    async def stop(self) -> None:
        """Refuse new clicks, write every queued one, then stop the writer.

        After ``drain_timeout`` seconds the writer is cancelled and whatever is still unanswered
        gets ``ShuttingDownError``: a shutdown must end even when the database is gone.
        """
        self._closed = True
        self._wakeup.set()
        self._full.set()
        if not self._writer.running:
            self._fail(self._take_all(), ShuttingDownError("the server is shutting down"))
            return
        try:
            if not await self._writer.join(self._drain_timeout):
                log.error(
                    "click queue not drained in %ss; refusing %d clicks",
                    self._drain_timeout,
                    self.queued,
                )
        finally:
            # On a timeout, or when our caller is cancelled: never leave it unattended.
            await self._writer.stop()

    async def record(self, click: ClickIn) -> Answer:
        """Queue ``click`` and return once it is committed (``None``: no such banner) or,
        with a spool, durable in it (``SpooledClick``)."""
        if self._closed or not self._writer.running:
            raise ShuttingDownError("the server is shutting down; retry")
        if len(self._queue) >= self._max_queue:
            raise OverloadedError("click queue is full; retry shortly")
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._queue.append((click, future))
        self._wakeup.set()
        if len(self._queue) >= self._target:
            self._full.set()
        # Not shielded: if this request is cancelled the future is cancelled with it, and
        # the writer skips answering it (no "exception never retrieved"). The click stays
        # in the queue and is stored with its batch.
        return await future

    # the writer ----------------------------------------------------------------------

    async def _run(self) -> None:
        batch: list[Pending] = []
        try:
            while True:
                if not self._queue:
                    if self._closed:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                await self._linger()
                batch = self._take(self._max_batch)
                await self._write(batch)
                batch = []
        except BaseException:
            # Cancelled (stop() timed out, or the loop is going away): nobody may wait
            # forever, and nothing unanswered may look acknowledged.
            self._fail([*batch, *self._take_all()], ShuttingDownError("click writer stopped"))
            raise

    async def _linger(self) -> None:
        # One pass of the loop lets requests that are already runnable queue their clicks.
        await asyncio.sleep(0)
        if self._closed or self._max_wait <= 0 or len(self._queue) >= self._max_batch:
            return
        if self._last_batch <= 1 and len(self._queue) <= 1:
            return  # no concurrent traffic: lingering would only add latency
        # Wait for as many clicks as the last batch answered, not for a full max_batch:
        # clients that just got their answer come back with their next click, and once
        # they have, waiting longer only adds latency (at 4 connections the 2 ms linger
        # was a third of every request's time). Clicks that queue during a commit make
        # the next batch bigger without any waiting.
        self._target = min(self._max_batch, self._last_batch)
        self._full.clear()
        if len(self._queue) >= self._target:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._full.wait(), self._max_wait)

    async def _write(self, batch: list[Pending], retries: int = TRANSIENT_RETRIES) -> None:
        """Commit ``batch``; retry it when cancelled, and on a rejected click bisect so
        only that click fails."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._last_batch = len(batch)
        try:
            if self._spool is None:
                results = await self._repo.record_clicks([c for c, _ in batch])
            else:
                committed = await self._commit_or_spool(self._spool, batch)
                if committed is None:
                    return  # spooled and answered
                results = committed
        except TransientError as exc:
            # Not an outage and not the clicks' fault: nothing was stored, write it again.
            if retries > 0:
                self.batches_retried += 1
                faults.warning("transient", "click batch of %d retried: %s", len(batch), exc)
                attempt = TRANSIENT_RETRIES - retries + 1
                await asyncio.sleep(transient_pause(attempt))
                await self._write(batch, retries - 1)
                return
            faults.error("transient", "click batch of %d given up: %s", len(batch), exc)
            self._failed(batch, exc)  # 503 + Retry-After: the client may try again
            return
        except UnavailableError as exc:
            faults.warning("unavailable", "click batch of %d failed: %s", len(batch), exc)
            self.last_outage = loop.time()
            self.last_outage_error = str(exc)
            self._failed(batch, exc)
            return
        except Exception as exc:
            if len(batch) > 1:
                # Nothing of this batch was stored (one transaction): retry the halves.
                half = len(batch) // 2
                await self._write(batch[:half])
                await self._write(batch[half:])
                return
            faults.error("rejected", "click rejected by the database: %r", exc, exc_info=exc)
            self._failed(batch, exc)
            return
        if len(results) != len(batch):
            # Committed, but the answers cannot be matched to the clicks: a bug, not a
            # rejected click, so no retry (it would store the batch twice).
            bug = RuntimeError(f"record_clicks gave {len(results)} results for {len(batch)}")
            log.error("%s", bug)
            self._failed(batch, bug)
            return
        self.batches_written += 1
        self.clicks_written += len(batch)
        self.last_success = loop.time()
        for (_, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)
        if self._on_batch is not None:
            try:
                self._on_batch(len(batch), loop.time() - started)
            except Exception:
                log.exception("on_batch callback failed")

    async def _commit_or_spool(
        self, spool: Spool, batch: list[Pending]
    ) -> list[RecordedClick | None] | None:
        """The batch committed (its results), or spooled and answered (``None``)."""
        clicks = [c for c, _ in batch]
        if self._state.down or spool.batches:
            await self._spool_batch(spool, batch, in_doubt=False)
            return None
        loop = asyncio.get_running_loop()
        write = loop.create_task(self._repo.record_clicks(clicks))
        # The write or the deadline, whichever comes first: one future, one timer and one
        # callback. ``asyncio.wait`` did the same with sets and a counter; on a healthy
        # database that was half of what the spool cost each batch (bench/spool_batch.py).
        ended = loop.create_future()
        timer = loop.call_later(self._spool_after, _end, ended)
        write.add_done_callback(lambda _: _end(ended))
        try:
            await ended
        finally:
            timer.cancel()
        if not write.done():
            self._state.failed(f"a click batch was not committed within {self._spool_after} s")
            key = await self._spool_batch(spool, batch, in_doubt=True)
            spool.hold(key, write)
            return None
        try:
            results = write.result()
        except TransientError:
            raise  # the database is there: _write retries, nothing to spool
        except UnavailableError as exc:
            self._state.failed(str(exc))
            await self._spool_batch(spool, batch, in_doubt=True)
            return None
        self._state.answered()
        return results

    async def _spool_batch(self, spool: Spool, batch: list[Pending], *, in_doubt: bool) -> str:
        key = await spool.append_clicks([c for c, _ in batch], in_doubt=in_doubt)
        self.clicks_spooled += len(batch)
        for click, fut in batch:
            if not fut.done():
                fut.set_result(
                    SpooledClick(banner_id=click.banner_id, occurred_at=click.occurred_at)
                )
        return key

    @property
    def failing(self) -> bool:
        """The latest write the database could not take came after the latest commit."""
        if self.last_outage is None:
            return False
        return self.last_success is None or self.last_outage > self.last_success

    def _failed(self, batch: list[Pending], exc: BaseException) -> None:
        self.batches_failed += 1
        self.clicks_failed += len(batch)
        self._fail(batch, exc)

    def _take(self, n: int) -> list[Pending]:
        n = min(n, len(self._queue))
        return [self._queue.popleft() for _ in range(n)]

    def _take_all(self) -> list[Pending]:
        return self._take(len(self._queue))

    @staticmethod
    def _fail(pending: Iterable[Pending], exc: BaseException) -> None:
        for _, fut in pending:
            if not fut.done():
                fut.set_exception(exc)


def _end(ended: asyncio.Future[None]) -> None:
    if not ended.done():
        ended.set_result(None)
