"""Hit ratio of our eviction policy against LRU and Belady's optimum, on real and Zipf traces.

Run: ``.venv/bin/python bench/hit_ratio.py [--requests 1000000]``

"Ours" is not a re-implementation: every request goes through a real ``MemoryCache``
(get, and set on a miss), so the SIEVE code that runs in production is what is measured,
and its hit count is read from the cache's own statistics. LRU is an ``OrderedDict``
simulation. Belady is the offline optimum (evict the entry needed furthest in the
future; a missed key needed later than everything cached is not admitted), an upper
bound no online policy can reach. Capacities are percentages of the distinct keys of
each trace. The real trace is ``../shared/traces/cloudPhysicsIO.txt`` next to the repo.
"""

from __future__ import annotations

import argparse
import heapq
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from bannertrack.cache import NO_VALUE, MemoryCache
from cache_zipf import zipf_keys

TRACE = Path(__file__).resolve().parents[1] / ".." / "shared" / "traces" / "cloudPhysicsIO.txt"
SIZES = (0.01, 0.05, 0.10)


def ours(trace: Sequence[str], capacity: int) -> float:
    cache = MemoryCache(max_entries=capacity, default_ttl=None)
    get, set_ = cache.get, cache.set
    for key in trace:
        if get(key) is NO_VALUE:
            set_(key, True)
    stats = cache.stats()
    assert stats.hits + stats.misses == len(trace)
    return stats.hits / len(trace)


def lru(trace: Sequence[str], capacity: int) -> float:
    cache: OrderedDict[str, None] = OrderedDict()
    hits = 0
    for key in trace:
        if key in cache:
            hits += 1
            cache.move_to_end(key)
        else:
            cache[key] = None
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits / len(trace)


def belady(trace: Sequence[str], capacity: int) -> float:
    never = len(trace)
    next_use = [never] * len(trace)
    seen: dict[str, int] = {}
    for i in range(len(trace) - 1, -1, -1):
        next_use[i] = seen.get(trace[i], never)
        seen[trace[i]] = i
    cached: dict[str, int] = {}  # key -> its next use
    heap: list[tuple[int, str]] = []  # (-next use, key); stale items skipped lazily
    hits = 0
    for i, key in enumerate(trace):
        nxt = next_use[i]
        if key in cached:
            hits += 1
        elif len(cached) >= capacity:
            while cached.get(heap[0][1]) != -heap[0][0]:
                heapq.heappop(heap)
            furthest, victim = heap[0]
            if -furthest <= nxt:
                continue  # needed later than everything cached (or never): do not admit
            heapq.heappop(heap)
            del cached[victim]
        cached[key] = nxt
        heapq.heappush(heap, (-nxt, key))
    return hits / len(trace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="per Zipf trace")
    parser.add_argument("--universe", type=int, default=100_000, help="Zipf key space")
    parser.add_argument(
        "--trace",
        type=Path,
        default=TRACE,
        help="real trace, one key a line (default: ../shared/traces/cloudPhysicsIO.txt)",
    )
    args = parser.parse_args()
    traces: dict[str, Sequence[str]] = {}
    if args.trace.is_file():
        traces[args.trace.stem] = [
            line.strip() for line in args.trace.read_text().splitlines() if line
        ]
    else:
        # The real trace ships beside the repository, not in it (it is libCacheSim's
        # data/cloudPhysicsIO.txt); without it the synthetic traces still run.
        print(f"note: no trace at {args.trace}; running the Zipf traces only\n")
    traces["Zipf(0.8)"] = zipf_keys(args.universe, 0.8, args.requests, seed=1, prefix="k:")
    traces["Zipf(1.0)"] = zipf_keys(args.universe, 1.0, args.requests, seed=2, prefix="k:")
    started = time.perf_counter()
    print("| trace | requests | distinct | capacity | ours (SIEVE) | LRU | Belady | ours - LRU |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    never_below = True
    for name, trace in traces.items():
        distinct = len(set(trace))
        for fraction in SIZES:
            capacity = max(1, round(distinct * fraction))
            ratios = ours(trace, capacity), lru(trace, capacity), belady(trace, capacity)
            never_below &= ratios[0] >= ratios[1]
            print(
                f"| {name} | {len(trace):,} | {distinct:,} | {fraction:.0%} ({capacity:,})"
                f" | {ratios[0]:.2%} | {ratios[1]:.2%} | {ratios[2]:.2%}"
                f" | {(ratios[0] - ratios[1]) * 100:+.2f} pt |"
            )
    verdict = "MET" if never_below else "NOT MET"
    print(f"\nGoal, ours >= LRU at every size: {verdict}")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
