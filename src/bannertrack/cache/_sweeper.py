"""The background task that removes expired entries between requests.

Expired entries are never returned whether or not this runs (every read checks the
deadline); the sweep only gives their memory back. It runs as a task on the
application's event loop, started and stopped with the application, and yields to the
loop after every chunk so a large sweep never holds up requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

logger = logging.getLogger(__name__)


class Sweeper:
    """Owns at most one cleanup task; ``start`` and ``stop`` are idempotent."""

    __slots__ = ("_interval", "_sweep", "_task")

    def __init__(self, sweep: Callable[[], Iterator[int]], interval: float) -> None:
        self._sweep = sweep
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self.running:
            return
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name="bannertrack-cache-cleanup"
        )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        # wait() rather than `await task`: the task's CancelledError is expected and must
        # not be confused with a cancellation of stop() itself, which still propagates.
        await asyncio.wait({task})

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                removed = 0
                for chunk in self._sweep():
                    removed += chunk
                    await asyncio.sleep(0)
            except Exception:  # a bug here must not end cleanup for the process' lifetime
                logger.exception("cache cleanup sweep failed")
            else:
                if removed:
                    logger.debug("cache cleanup removed %d expired entries", removed)
