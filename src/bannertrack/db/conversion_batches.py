"""Group commit for conversion reports: the reports that wait meanwhile, one transaction.

A conversion was one transaction, so one commit (one fsync) per report: 47 a second on
SQLite and 11 on PostgreSQL (docs/benchmarks.md, "Conversions"). Here a report joins a
queue and waits for its turn; the report whose turn comes writes every report queued by
then (up to ``max_batch``) in one transaction (``conversion_writes.record_conversions``),
and answers each. While that batch commits, the next reports queue up and form the next
batch, as clicks' batches do (``clicks/ingest.py``), without a writer task or a linger: a
lone report on an idle server is written at once.

What is kept, report by report:

- an answer only after the batch's commit, so a 201 is durable and a read after it sees
  the conversion;
- "the same (click id, goal) counts once" and 200 for the repeats, within a batch and
  across batches (``conversion_writes``'s docstring);
- a refused report (404, 422) refuses only itself: it wrote nothing, and the rest of the
  batch goes on;
- a batch the database cancelled (``TransientError``: a deadlock) stored nothing and is
  written again whole, up to ``TRANSIENT_RETRIES`` times after a short jittered pause;
- a batch the database cannot take (``UnavailableError``: 503) answers each report with
  that error, as a click batch does;
- a batch that fails for any other reason is written again one report per transaction
  (``write_one``), so only a report that fails alone gets the error. A failed batch
  stored nothing; one whose commit's outcome is unknown may have stored them all, and
  then its reports are answered 200 with their stored conversions (counted once);
- a report whose client goes away while it waits leaves the queue unwritten; once its
  batch is being written the batch is finished (shielded) and the report stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from bannertrack.conversions.values import ConversionIn, Recorded
from bannertrack.db.conversion_writes import Outcome
from bannertrack.errors import (
    TRANSIENT_RETRIES,
    TransientError,
    UnavailableError,
    transient_pause,
)

Item = tuple[ConversionIn, timedelta]
_Pending = tuple[ConversionIn, timedelta, "asyncio.Future[Recorded]"]


class ConversionBatches:
    def __init__(
        self,
        write_batch: Callable[[Sequence[Item]], Awaitable[list[Outcome]]],
        write_one: Callable[[Item], Awaitable[Recorded]],
        max_batch: int = 256,
    ) -> None:
        if max_batch < 1:
            raise ValueError("need max_batch >= 1")
        self._write_batch = write_batch
        self._write_one = write_one
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._turn = asyncio.Lock()  # FIFO: one batch at a time from this process

    @property
    def queued(self) -> int:
        """Reports waiting for a turn (not yet in a batch)."""
        return len(self._queue)

    async def record(self, data: ConversionIn, window: timedelta) -> Recorded:
        """``data`` stored (or found stored) with the batch its turn writes."""
        answer: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        pending = (data, window, answer)
        self._queue.append(pending)
        try:
            while not answer.done():
                await self._turn.acquire()
                if answer.done():  # an earlier report's turn wrote it
                    self._turn.release()
                    break
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                # The batch, not this report, holds the turn until it is answered: if this
                # report's client goes away meanwhile, the batch still finishes, and the
                # reports in it wait for their answers instead of taking the next turn.
                write = asyncio.ensure_future(self._write(batch))
                write.add_done_callback(lambda _: self._turn.release())
                await asyncio.shield(write)
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                self._queue.remove(pending)  # not taken yet: never written
            answer.cancel()
            raise
        return answer.result()

    async def _write(self, batch: list[_Pending]) -> None:
        items = [(data, window) for data, window, _ in batch]
        try:
            outcomes: Sequence[Outcome | Exception] = await self._retried(items)
        except UnavailableError as exc:  # each alone would fail (or time out) alike
            outcomes = [exc] * len(items)
        except Exception as exc:
            alone = len(items) > 1
            outcomes = [await self._alone(item) for item in items] if alone else [exc]
        except BaseException:  # cancelled (the loop is closing): no report waits forever
            for _, _, answer in batch:
                answer.cancel()
            raise
        for (_, _, answer), outcome in zip(batch, outcomes, strict=True):
            if answer.done():  # its client went away
                continue
            if isinstance(outcome, Exception):
                answer.set_exception(outcome)
            else:
                answer.set_result(outcome)

    async def _retried(self, items: list[Item]) -> list[Outcome]:
        for attempt in range(1, TRANSIENT_RETRIES + 1):
            try:
                return await self._write_batch(items)
            except TransientError:
                await asyncio.sleep(transient_pause(attempt))
        return await self._write_batch(items)  # still cancelled: 503, as an outage's

    async def _alone(self, item: Item) -> Recorded | Exception:
        try:
            return await self._write_one(item)
        except Exception as exc:
            return exc
