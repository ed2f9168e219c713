"""Micro-benchmark of the cache hit path and friends, against other caches, in one process.

Run: ``.venv/bin/python bench/cache_micro.py [--reps 7] [--ops 200000]``

Every cache runs the same key streams in the same process; repetitions are interleaved
(rep 1 of every cache, then rep 2, ...) so drift of the machine hits all of them alike.
Each figure is the median over repetitions of (loop time / operations), loop overhead
included for everyone, with the garbage collector off while timing, as ``timeit`` does.
Each loop calls the library the way its documentation says to, inline, with no wrapper
function of ours in between (for cachetools that makes it slightly faster than a real
locked wrapper would be).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from importlib.metadata import version
from typing import Any

import cachebox
import cachetools
import theine

from bannertrack.cache import MemoryCache, RedisTier, StructCodec, TieredCache
from cache_zipf import zipf_keys

CAPACITY = 10_000
TTL = 300.0
Op = tuple[str, bool]  # (key, is_set)


class Subject:
    """One cache under test; the loops are spelled out per library, not abstracted."""

    name = ""

    def fresh(self, keys: Sequence[str]) -> None:
        raise NotImplementedError

    def hit(self, keys: Sequence[str]) -> None:
        raise NotImplementedError

    def miss(self, keys: Sequence[str]) -> None:
        self.hit(keys)

    def set(self, keys: Sequence[str]) -> None:
        raise NotImplementedError

    def mix(self, ops: Sequence[Op]) -> None:
        raise NotImplementedError


class Ours(Subject):
    name = "bannertrack MemoryCache"

    def fresh(self, keys: Sequence[str]) -> None:
        self.cache = MemoryCache(max_entries=CAPACITY, default_ttl=TTL)
        for key in keys:
            self.cache.set(key, key)

    def hit(self, keys: Sequence[str]) -> None:
        get = self.cache.get
        for key in keys:
            get(key)

    def set(self, keys: Sequence[str]) -> None:
        set_ = self.cache.set
        for key in keys:
            set_(key, key)

    def mix(self, ops: Sequence[Op]) -> None:
        get, set_ = self.cache.get, self.cache.set
        for key, is_set in ops:
            if is_set:
                set_(key, key)
            else:
                get(key)


class PlainDict(Subject):
    name = "dict (floor: no TTL, no bound, no lock)"

    def fresh(self, keys: Sequence[str]) -> None:
        self.cache: dict[str, str] = dict.fromkeys(keys, "v")

    def hit(self, keys: Sequence[str]) -> None:
        get = self.cache.get
        for key in keys:
            get(key)

    def set(self, keys: Sequence[str]) -> None:
        cache = self.cache
        for key in keys:
            cache[key] = key

    def mix(self, ops: Sequence[Op]) -> None:
        cache = self.cache
        get = cache.get
        for key, is_set in ops:
            if is_set:
                cache[key] = key
            else:
                get(key)


class CachetoolsLocked(Subject):
    name = f"cachetools {version('cachetools')} TTLCache + Lock"

    def fresh(self, keys: Sequence[str]) -> None:
        self.lock = threading.Lock()
        self.cache: cachetools.TTLCache[str, str] = cachetools.TTLCache(CAPACITY, TTL)
        for key in keys:
            self.cache[key] = key

    def hit(self, keys: Sequence[str]) -> None:
        lock, cache = self.lock, self.cache
        for key in keys:
            with lock:
                cache.get(key)

    def set(self, keys: Sequence[str]) -> None:
        lock, cache = self.lock, self.cache
        for key in keys:
            with lock:
                cache[key] = key

    def mix(self, ops: Sequence[Op]) -> None:
        lock, cache = self.lock, self.cache
        for key, is_set in ops:
            with lock:
                if is_set:
                    cache[key] = key
                else:
                    cache.get(key)


class Theine(Subject):
    name = f"theine {version('theine')}"

    def fresh(self, keys: Sequence[str]) -> None:
        self.ttl = timedelta(seconds=TTL)
        self.cache: Any = theine.Cache(CAPACITY)
        for key in keys:
            self.cache.set(key, key, self.ttl)

    def hit(self, keys: Sequence[str]) -> None:
        get = self.cache.get
        for key in keys:
            get(key)

    def set(self, keys: Sequence[str]) -> None:
        set_, ttl = self.cache.set, self.ttl
        for key in keys:
            set_(key, key, ttl)

    def mix(self, ops: Sequence[Op]) -> None:
        get, set_, ttl = self.cache.get, self.cache.set, self.ttl
        for key, is_set in ops:
            if is_set:
                set_(key, key, ttl)
            else:
                get(key)


class Cachebox(Subject):
    name = f"cachebox {version('cachebox')} VTTLCache (Rust)"

    def fresh(self, keys: Sequence[str]) -> None:
        self.cache: Any = cachebox.VTTLCache(CAPACITY)
        for key in keys:
            self.cache.insert(key, key, TTL)

    def hit(self, keys: Sequence[str]) -> None:
        get = self.cache.get
        for key in keys:
            get(key)

    def set(self, keys: Sequence[str]) -> None:
        insert = self.cache.insert
        for key in keys:
            insert(key, key, TTL)

    def mix(self, ops: Sequence[Op]) -> None:
        get, insert = self.cache.get, self.cache.insert
        for key, is_set in ops:
            if is_set:
                insert(key, key, TTL)
            else:
                get(key)


def counting_variants(cache: MemoryCache) -> dict[str, Callable[[str], object]]:
    """Hit paths that differ only in how they count, over the real cache's entries.

    Experiment only, to price the counting choice; the first one is the production
    closure itself.
    """
    entries, clock, lock = cache._entries, time.monotonic, threading.Lock()
    plain_hits = 0

    def uncounted(key: str) -> object:  # visited bit, no hit count: not exact, the floor
        entry = entries.get(key)
        if entry is not None and entry.expires > clock():
            entry.visited = True
            return entry.value
        return None

    def racy(key: str) -> object:  # `+= 1` without a lock: can lose updates across threads
        nonlocal plain_hits
        entry = entries.get(key)
        if entry is not None and entry.expires > clock():
            entry.visited = True
            plain_hits += 1
            return entry.value
        return None

    def locked(key: str) -> object:  # exact, with the lock on every hit
        nonlocal plain_hits
        with lock:
            entry = entries.get(key)
            if entry is not None and entry.expires > clock():
                entry.visited = True
                plain_hits += 1
                return entry.value
        return None

    return {
        "production: next(itertools.count), no lock": cache.get,
        "no hit count (not exact)": uncounted,
        "`+= 1`, no lock (not exact under threads)": racy,
        "`+= 1` under `with lock` (exact)": locked,
    }


def timed(run: Callable[[], None], ops: int) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        run()
        return (time.perf_counter_ns() - start) / ops
    finally:
        gc.enable()


def _loop(get: Callable[[str], object], keys: Sequence[str]) -> None:
    for key in keys:
        get(key)


async def _load_hits(
    goal: Callable[[str, Callable[[], Any]], Any], keys: Sequence[str], reps: int
) -> list[float]:
    """ns per ``await goal(key, loader)`` over keys that are all L1 hits, one per rep."""

    async def loader() -> str:
        raise AssertionError("a hit must not load")

    times = []
    for _ in range(reps):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            for key in keys:
                await goal(key, loader)
            times.append((time.perf_counter_ns() - start) / len(keys))
        finally:
            gc.enable()
    return times


async def load_hit_rows(stored: Sequence[str], keys: Sequence[str], reps: int) -> dict[str, float]:
    """The ``get_or_load`` hit path as ``CachedRepository`` runs it, L1 alone and tiered.

    The L2 tier is configured but never contacted: a hit must not reach it, and a Redis
    client connects lazily, so nothing listens at that address.
    """
    l2 = RedisTier.from_url("redis://127.0.0.1:9", StructCodec(()))
    subjects: dict[str, MemoryCache | TieredCache] = {
        "MemoryCache.get_or_load": MemoryCache(max_entries=CAPACITY, default_ttl=TTL),
        "TieredCache.get_or_load, no L2": TieredCache(MemoryCache(CAPACITY, TTL)),
        "TieredCache.get_or_load, L2 configured": TieredCache(MemoryCache(CAPACITY, TTL), l2),
    }
    for cache in subjects.values():
        for key in stored:
            cache.set(key, key)
    samples: dict[str, list[float]] = {name: [] for name in subjects}
    for _ in range(reps):  # interleaved, as above
        for name, cache in subjects.items():
            samples[name] += await _load_hits(cache.get_or_load, keys, 1)
    await l2.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def print_load_rows(rows: dict[str, float]) -> None:
    print("\nThe get_or_load hit path (hit get keys, in a coroutine loop, ns per hit):\n")
    print("| cache | ns |")
    print("|---|---:|")
    for label, ns in rows.items():
        print(f"| {label} | {ns:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument(
        "--loads-only", action="store_true", help="only the get_or_load hit-path table"
    )
    args = parser.parse_args()
    n = args.ops
    rng = random.Random(42)
    stored = [f"banner:{i}" for i in range(CAPACITY)]
    hits = [rng.choice(stored) for _ in range(n)]
    hot = [stored[i % 1000] for i in range(n)]  # 1,000 keys in a cycle: CPU caches stay hot
    absent = [f"banner:x{i}" for i in range(CAPACITY)]
    misses = [rng.choice(absent) for _ in range(n)]
    sets = [f"banner:{rng.randrange(4 * CAPACITY)}" for _ in range(n)]
    mix_keys = zipf_keys(10 * CAPACITY, 1.0, n, seed=7)
    mix: list[Op] = [(key, rng.random() < 0.10) for key in mix_keys]

    if args.loads_only:
        print_load_rows(asyncio.run(load_hit_rows(stored, hits, args.reps)))
        return
    subjects: list[Subject] = [Ours(), PlainDict(), CachetoolsLocked(), Theine(), Cachebox()]
    workloads: dict[str, Callable[[Subject], Callable[[], None]]] = {
        "hit get": lambda s: lambda: s.hit(hits),
        "hit get, 1k hot keys": lambda s: lambda: s.hit(hot),
        "miss get": lambda s: lambda: s.miss(misses),
        "set (insert/evict)": lambda s: lambda: s.set(sets),
        "90/10 get/set Zipf(1.0)": lambda s: lambda: s.mix(mix),
    }
    samples: dict[tuple[str, str], list[float]] = {}
    for rep in range(args.reps):
        for workload, make in workloads.items():
            for subject in subjects:
                subject.fresh(stored)
                samples.setdefault((workload, subject.name), []).append(timed(make(subject), n))
        print(f"rep {rep + 1}/{args.reps} done", file=sys.stderr)

    med = {k: statistics.median(v) for k, v in samples.items()}
    print(
        f"\nPython {sys.version.split()[0]}, {n:,} ops per run, median of {args.reps} runs,"
        f" capacity {CAPACITY:,}, ns per operation (loop overhead included)\n"
    )
    header = ["cache", *workloads]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] + ["---:"] * len(workloads)) + "|")
    for subject in subjects:
        cells = [f"{med[(w, subject.name)]:,.0f}" for w in workloads]
        print(f"| {subject.name} | " + " | ".join(cells) + " |")

    ours = Ours.name
    print("\nRatios (how many times faster ours is; below 1 means slower):\n")
    print("| versus | " + " | ".join(workloads) + " |")
    print("|" + "|".join(["---"] + ["---:"] * len(workloads)) + "|")
    for subject in subjects[1:]:
        cells = [f"{med[(w, subject.name)] / med[(w, ours)]:.2f}x" for w in workloads]
        print(f"| {subject.name} | " + " | ".join(cells) + " |")

    counting: dict[str, list[float]] = {}
    subject = Ours()
    subject.fresh(stored)
    variants = counting_variants(subject.cache)
    for _ in range(args.reps):
        for label, get in variants.items():
            counting.setdefault(label, []).append(timed(lambda g=get: _loop(g, hits), n))
    print("\nWhat exact hit counting costs (hit get, same entries, ns per hit):\n")
    print("| hit path variant | ns |")
    print("|---|---:|")
    for label, values in counting.items():
        print(f"| {label} | {statistics.median(values):,.0f} |")

    print_load_rows(asyncio.run(load_hit_rows(stored, hits, args.reps)))

    print()
    for hit in ("hit get", "hit get, 1k hot keys"):
        speedup = med[(hit, CachetoolsLocked.name)] / med[(hit, ours)]
        behind = med[(hit, ours)] / med[(hit, Cachebox.name)]
        print(
            f"Goal 1 ({hit}), >= 5x faster than cachetools+Lock: {speedup:.2f}x ->"
            f" {'MET' if speedup >= 5 else 'NOT MET'}"
        )
        print(
            f"Goal 2 ({hit}), within 3x of cachebox: {behind:.2f}x cachebox's time ->"
            f" {'MET' if behind <= 3 else 'NOT MET'}"
        )


if __name__ == "__main__":
    main()
