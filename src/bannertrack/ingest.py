"""Group commit for clicks: many requests, one transaction, then the acknowledgements.

A click request puts its click on a bounded queue and waits. One writer task takes
whatever is queued (up to ``max_batch``), lingering at most ``max_wait`` seconds for
more when the queue is short, and hands the batch to ``Repository.record_clicks`` in
one transaction. Only after that call returns (commit done, and with a
``CachedRepository`` the batch's invalidations done) are the waiting requests answered.
So an acknowledged click is durable, and a read that starts after the acknowledgement
sees it.

Failure never turns into a silent drop: if the batch fails, every click in it gets the
error (503); if the queue is full, new clicks are refused at once (503 + Retry-After)
instead of growing memory; at shutdown the queue is closed to new clicks and drained.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from bannertrack.errors import OverloadedError, UnavailableError
from bannertrack.models import ClickIn, RecordedClick
from bannertrack.repository import Repository

log = logging.getLogger("bannertrack.ingest")

Pending = tuple[ClickIn, "asyncio.Future[RecordedClick | None]"]


class ShuttingDownError(UnavailableError):
    code = "shutting_down"


class ClickIngest:
    def __init__(
        self,
        repository: Repository,
        *,
        max_batch: int = 1000,
        max_wait: float = 0.002,
        max_queue: int = 20_000,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self._repo = repository
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._max_queue = max_queue
        self._on_batch = on_batch
        self._queue: deque[Pending] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._writer: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def start(self) -> None:
        if self._writer is None:
            self._closed = False
            self._writer = asyncio.create_task(self._run(), name="bannertrack-click-writer")

    async def stop(self) -> None:
        """Refuse new clicks, write every queued one, then stop the writer."""
        self._closed = True
        self._wakeup.set()
        if self._writer is not None:
            await self._writer
            self._writer = None

    async def record(self, click: ClickIn) -> RecordedClick | None:
        if self._closed or self._writer is None:
            raise ShuttingDownError("the server is shutting down; retry")
        if len(self._queue) >= self._max_queue:
            raise OverloadedError("click queue is full; retry shortly")
        future: asyncio.Future[RecordedClick | None] = asyncio.get_running_loop().create_future()
        self._queue.append((click, future))
        self._wakeup.set()
        # Shielded: a client that disconnects does not pull its click out of a batch
        # that may already be committing; it is stored, just not acknowledged.
        return await asyncio.shield(future)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closed:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if len(self._queue) < self._max_batch and not self._closed and self._max_wait > 0:
                await asyncio.sleep(self._max_wait)
            n = min(len(self._queue), self._max_batch)
            batch = [self._queue.popleft() for _ in range(n)]
            started = loop.time()
            try:
                results = await self._repo.record_clicks([c for c, _ in batch])
            except Exception as exc:
                if not isinstance(exc, UnavailableError):
                    log.exception("click batch of %d failed", n)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)
            if self._on_batch is not None:
                self._on_batch(n, loop.time() - started)
