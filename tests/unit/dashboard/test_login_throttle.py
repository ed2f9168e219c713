"""The brake on /login: a leaky bucket of wrong tokens per client key, bounded in memory."""

from __future__ import annotations

import pytest

from bannertrack.dashboard.login_throttle import LoginThrottle

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_try_per_leak() -> None:
    clock = Clock()
    t = LoginThrottle(burst=5, leak_seconds=30.0, clock=clock)
    for _ in range(4):
        assert t.retry_after("a") is None
        t.failed("a")
    assert t.retry_after("a") is None  # the fifth wrong token may still be tried
    t.failed("a")
    assert t.retry_after("a") == 30
    assert t.retry_after("b") is None  # another client is not braked
    clock.now += 29.5
    assert t.retry_after("a") == 1
    clock.now += 0.5
    assert t.retry_after("a") is None  # one more try, then the wait again
    t.failed("a")
    assert t.retry_after("a") == 30
    t.succeeded("a")
    assert t.retry_after("a") is None and len(t) == 0


def test_a_persistent_guesser_waits_longer() -> None:
    clock = Clock()
    t = LoginThrottle(burst=3, leak_seconds=10.0, clock=clock)
    for _ in range(6):  # tries past the burst (refused by /login, counted here anyway)
        t.failed("a")
    assert t.retry_after("a") == 40


def test_memory_is_bounded_least_recent_first() -> None:
    t = LoginThrottle(max_clients=3, clock=Clock())
    for key in ("a", "b", "c"):
        t.failed(key)
    t.failed("a")  # touched again: the newest
    t.failed("d")
    assert t.keys() == ["c", "a", "d"]
    for i in range(10_000):
        t.failed(f"k{i}")
    assert len(t) == 3
