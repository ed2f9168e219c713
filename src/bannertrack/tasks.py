"""One way to run a background task: a loop owned by a component, started and stopped
with it.

``BackgroundTask`` owns at most one asyncio task. ``start`` and ``stop`` are idempotent,
and it is an async context manager; a component that owns one becomes one too by
deriving from ``Lifecycle``.

``stop`` cancels the task and waits for it with ``asyncio.wait``, never ``await task``
inside ``suppress(CancelledError)``: the task's own ``CancelledError`` is expected, but
one aimed at the caller of ``stop`` (a shutdown that is itself being cancelled) must
reach that caller, and a ``suppress`` cannot tell the two apart.

``every(interval, step)`` is the body of a periodic task. Its ``sleep`` is a parameter,
so a test drives the loop with fake time (``tests/support/fake_time.py``) instead of
sleeping; an error of one step is reported and the loop goes on, since a bug or an
outage in one run must not end the task for the life of the process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, Self

log = logging.getLogger("bannertrack.tasks")

Sleep = Callable[[float], Awaitable[None]]
Body = Callable[[], Coroutine[Any, Any, None]]


class Lifecycle:
    """Makes a component with async ``start()`` and ``stop()`` an async context manager."""

    __slots__ = ()

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class BackgroundTask(Lifecycle):
    """At most one task running ``body()``, named ``name`` (visible in task dumps)."""

    __slots__ = ("_body", "_name", "_task")

    def __init__(self, body: Body, *, name: str) -> None:
        self._body = body
        self._name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the task unless it runs; a task that ended is started afresh."""
        if self.running:
            return
        self._task = asyncio.get_running_loop().create_task(self._body(), name=self._name)

    async def join(self, within: float | None) -> bool:
        """Wait up to ``within`` seconds for the task to end by itself; True if it did.

        The task is not cancelled when the wait times out or the caller is cancelled:
        the caller decides (usually ``stop()``).
        """
        task = self._task
        if task is None:
            return True
        done, _ = await asyncio.wait({task}, timeout=within)
        if done:
            self._task = None
            _report(task)
        return bool(done)

    async def stop(self) -> None:
        """Cancel the task and wait until it has ended; does nothing when none runs."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait({task})
        _report(task)


def _report(task: asyncio.Task[None]) -> None:
    """Log how a task ended, if it ended by an error (nobody else awaits it)."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("background task %s failed", task.get_name(), exc_info=error)


def every(
    interval: float,
    step: Callable[[], Awaitable[object]],
    *,
    on_error: Callable[[Exception], None],
    sleep: Sleep = asyncio.sleep,
    first: bool = False,
) -> Body:
    """A loop that runs ``step`` every ``interval`` seconds (at once too when ``first``).

    An exception of ``step`` goes to ``on_error`` and the loop goes on.
    """

    async def run_step() -> None:
        try:
            await step()
        except Exception as exc:
            on_error(exc)

    async def body() -> None:
        if first:
            await run_step()
        while True:
            await sleep(interval)
            await run_step()

    return body
