"""Versioned invalidation: a load that started before an invalidation never stores.

Each race is forced deterministically: the loader blocks on an event until the test has
invalidated, so no timing luck is involved.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests.support.waiting import wait_until

from bannertrack.cache import NO_VALUE, MemoryCache

Invalidate = Callable[[MemoryCache], object]

INVALIDATIONS: dict[str, Invalidate] = {
    "delete": lambda c: c.delete("banner_stats:7"),
    "delete_prefix": lambda c: c.delete_prefix("banner_stats:"),
    "delete_prefix_partial_key": lambda c: c.delete_prefix("banner_st"),
    "clear": lambda c: c.clear(),
    "set": lambda c: c.set("banner_stats:7", "written"),
}


@pytest.mark.parametrize("how", INVALIDATIONS)
async def test_async_load_started_before_invalidation_never_stores(
    cache: MemoryCache, how: str
) -> None:
    key = "banner_stats:7"
    old_gate, new_gate = asyncio.Event(), asyncio.Event()
    versions = iter(["stale", "fresh"])
    gates = iter([old_gate, new_gate])
    running: list[str] = []

    async def loader() -> str:
        value, gate = next(versions), next(gates)
        running.append(value)
        await gate.wait()
        return value

    early = asyncio.create_task(cache.get_or_load(key, loader))
    await wait_until(lambda: running == ["stale"])  # the stale load is running and waiting
    INVALIDATIONS[how](cache)
    expected_after = "written" if how == "set" else NO_VALUE

    late = asyncio.create_task(cache.get_or_load(key, loader))
    # A hit for a write; else a new load, waiting at its own gate.
    await wait_until(lambda: late.done() if how == "set" else running == ["stale", "fresh"])
    old_gate.set()
    assert await early == "stale"  # its own waiters still get it
    assert cache.get(key) == expected_after  # ...but it was not stored
    new_gate.set()
    if how == "set":
        assert await late == "written"  # the explicit write was a hit
    else:
        assert await late == "fresh"  # a new load, not the old flight
        assert cache.get(key) == "fresh"


async def test_invalidation_of_another_key_leaves_the_flight_alone(cache: MemoryCache) -> None:
    gate = asyncio.Event()

    running = asyncio.Event()

    async def loader() -> str:
        running.set()
        await gate.wait()
        return "v"

    task = asyncio.create_task(cache.get_or_load("banner_stats:7", loader))
    await wait_until(running.is_set)
    cache.delete("banner_stats:8")
    cache.delete_prefix("banner:")
    gate.set()
    assert await task == "v"
    assert cache.get("banner_stats:7") == "v"


async def test_prefix_invalidation_detaches_loads_of_keys_not_stored_yet(
    cache: MemoryCache,
) -> None:
    gate = asyncio.Event()

    running: list[int] = []

    async def loader() -> str:
        running.append(1)
        await gate.wait()
        return "top"

    loads = [asyncio.create_task(cache.get_or_load(f"top_banners:{n}", loader)) for n in (5, 10)]
    await wait_until(lambda: len(running) == 2)
    assert len(cache) == 0
    assert cache.delete_prefix("top_banners:") == 0
    gate.set()
    assert await asyncio.gather(*loads) == ["top", "top"]
    assert len(cache) == 0


@pytest.mark.parametrize("how", INVALIDATIONS)
async def test_load_on_another_loop_started_before_invalidation_never_stores(
    cache: MemoryCache, how: str
) -> None:
    """The same promise across event loops (threads): each loop has its own flights."""
    key = "banner_stats:7"
    started, release = threading.Event(), threading.Event()

    async def stale_loader() -> str:
        started.set()
        await asyncio.to_thread(release.wait, 5)
        return "stale"

    async def fresh() -> str:
        return "fresh"

    with ThreadPoolExecutor(max_workers=1) as pool:
        early = pool.submit(asyncio.run, cache.get_or_load(key, stale_loader))
        assert await asyncio.to_thread(started.wait, 5)
        INVALIDATIONS[how](cache)
        # a caller after the invalidation does not join the old flight
        late = await cache.get_or_load(key, fresh)
        release.set()
        assert await asyncio.wrap_future(early) == "stale"
    if how == "set":
        assert late == "written"
        assert cache.get(key) == "written"
    else:
        assert late == "fresh"
        assert cache.get(key) == "fresh"


def test_many_racing_invalidations_never_leave_a_stale_value(cache: MemoryCache) -> None:
    """A writer bumps the source of truth then invalidates; readers load through the
    cache. After the writer returns, a read must not see a value older than its write.

    Readers and the writer each run their own event loop on their own thread, so loads
    of one loop race invalidations made from another.
    """
    source = {"version": 0}
    lock = threading.Lock()
    stop = threading.Event()
    violations: list[tuple[int, int]] = []

    async def loader() -> int:
        with lock:
            value = source["version"]
        await asyncio.sleep(0.0002)  # a slow query: the write can land meanwhile
        return value

    async def reader() -> None:
        # Invalidate-then-load keeps a load in flight nearly all the time, which is the
        # dangerous moment for the writer: it must never join a load older than its write.
        while not stop.is_set():
            cache.delete("banner:1")
            await cache.get_or_load("banner:1", loader)

    async def writer() -> None:
        for _ in range(300):
            with lock:
                source["version"] += 1
                written = source["version"]
            cache.delete("banner:1")
            seen = await cache.get_or_load("banner:1", loader)
            if seen < written:
                violations.append((written, seen))

    readers = [threading.Thread(target=asyncio.run, args=(reader(),)) for _ in range(4)]
    for thread in readers:
        thread.start()
    try:
        asyncio.run(writer())
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert violations == []
