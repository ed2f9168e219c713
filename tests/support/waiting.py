"""Wait for a condition against a deadline, instead of sleeping and then asserting.

A fixed sleep before an assert is a guess at how long the code under test needs; on a
shared machine with two busy cores the guess is sometimes wrong and the test flakes. These
poll the condition itself: they return as soon as it holds (so a fast machine is not made
to wait) and fail with the condition's name and place once ``timeout`` seconds pass.

``wait_until`` is for the event loop (its predicate may be sync or async); ``wait_until_sync``
for tests that drive a server process from plain code.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

Predicate = Callable[[], bool | Awaitable[bool]]
Describe = str | Callable[[], str] | None

TIMEOUT = 10.0  # generous: it bounds a failure, a passing test never waits this long
INTERVAL = 0.01


async def wait_until(
    predicate: Predicate,
    *,
    # The poll's deadline, not a bound to cancel at: asyncio.timeout would cancel a
    # predicate in the middle of its query and report a CancelledError instead of what.
    timeout: float = TIMEOUT,  # noqa: ASYNC109
    interval: float = INTERVAL,
    what: Describe = None,
) -> None:
    """Return once ``predicate()`` is true (awaited when it returns an awaitable); fail
    after ``timeout`` seconds, saying ``what`` (a text, or a function that tells the
    state at that moment) or else where the predicate was written."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(_failure(predicate, timeout, what))
        await asyncio.sleep(interval)


def wait_until_sync(
    predicate: Callable[[], bool],
    *,
    timeout: float = TIMEOUT,
    interval: float = INTERVAL,
    what: Describe = None,
) -> None:
    """``wait_until`` for code outside an event loop (blocks the thread between polls)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(_failure(predicate, timeout, what))
        time.sleep(interval)


def _failure(predicate: Callable[[], object], timeout: float, what: Describe) -> str:
    if callable(what):
        what = what()
    if what is None:
        code = getattr(predicate, "__code__", None)
        name = getattr(predicate, "__qualname__", repr(predicate))
        where = f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""
        what = f"{name}{where}"
    return f"not true within {timeout:g} s: {what}"
