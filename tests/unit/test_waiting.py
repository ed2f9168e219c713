"""The wait helpers of tests/support/waiting.py: they return as soon as the condition
holds and fail, naming it, once the deadline passes."""

from __future__ import annotations

import time

import pytest

from tests.support.waiting import wait_until, wait_until_sync


async def test_returns_once_the_condition_holds() -> None:
    polls: list[int] = []

    def third_time() -> bool:
        polls.append(1)
        return len(polls) >= 3

    await wait_until(third_time, interval=0.001)
    assert len(polls) == 3


async def test_awaits_an_async_condition() -> None:
    polls: list[int] = []

    async def second_time() -> bool:
        polls.append(1)
        return len(polls) >= 2

    await wait_until(second_time, interval=0.001)
    assert len(polls) == 2


async def test_fails_after_the_deadline_naming_the_condition() -> None:
    def never() -> bool:
        return False

    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"within 0\.05 s: .*never \(.*test_waiting\.py"):
        await wait_until(never, timeout=0.05, interval=0.01)
    assert time.monotonic() - started < 1.0
    with pytest.raises(AssertionError, match="queue at 3"):
        await wait_until(lambda: False, timeout=0.01, what=lambda: "queue at 3")


def test_the_sync_twin_waits_and_fails_the_same_way() -> None:
    polls: list[int] = []
    wait_until_sync(lambda: polls.append(1) or len(polls) >= 2, interval=0.001)
    assert len(polls) == 2
    with pytest.raises(AssertionError, match=r"within 0\.02 s: nothing"):
        wait_until_sync(lambda: False, timeout=0.02, what="nothing")
