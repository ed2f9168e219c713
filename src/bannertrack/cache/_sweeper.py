"""The background task that removes expired entries between requests.

Expired entries are never returned whether or not this runs (every read checks the
deadline); the sweep only gives their memory back. It runs as a task on the
application's event loop, started and stopped with the application, and yields to the
loop after every chunk so a large sweep never holds up requests. The task itself is a
``bannertrack.tasks.BackgroundTask``: idempotent start and stop, and a ``stop()`` that
never swallows a cancellation aimed at its caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator

from bannertrack.tasks import BackgroundTask, Lifecycle, Sleep, every

logger = logging.getLogger(__name__)


def _sweep_failed(exc: Exception) -> None:
    # A bug here must not end cleanup for the process' lifetime: logged, next run goes on.
    logger.error("cache cleanup sweep failed", exc_info=exc)


class Sweeper(Lifecycle):
    """Owns at most one cleanup task; ``start`` and ``stop`` are idempotent."""

    __slots__ = ("_sweep", "_task")

    def __init__(
        self,
        sweep: Callable[[], Iterator[int]],
        interval: float,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._sweep = sweep
        body = every(interval, self.sweep_once, on_error=_sweep_failed, sleep=sleep)
        self._task = BackgroundTask(body, name="bannertrack-cache-cleanup")

    @property
    def running(self) -> bool:
        return self._task.running

    async def start(self) -> None:
        await self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def sweep_once(self) -> int:
        """One sweep, giving the loop a turn after every chunk; returns entries removed."""
        removed = 0
        for chunk in self._sweep():
            removed += chunk
            await asyncio.sleep(0)
        if removed:
            logger.debug("cache cleanup removed %d expired entries", removed)
        return removed
