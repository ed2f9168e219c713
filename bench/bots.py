"""What a bot verdict costs: a new user agent (the patterns run) and a memoised one.

Run: ``.venv/bin/python bench/bots.py [--reps 7]``

Timing is kept out of the unit suite (its figures depend on the machine and its load);
here each figure is the median over repetitions, and the run exits non-zero when the
loose budgets of the click path are exceeded: 1 ms for a new agent, 20 µs memoised.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from bannertrack.clicks import bots

AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
NEW_AGENT_BUDGET = 1e-3
MEMOISED_BUDGET = 2e-5


def per_call_new(n: int, rep: int) -> float:
    unseen = [f"{AGENT} build/{rep}/{i}" for i in range(n)]
    started = time.perf_counter()
    for agent in unseen:
        bots.classify.__wrapped__(agent)
    return (time.perf_counter() - started) / n


def per_call_memoised(n: int) -> float:
    bots.classify(AGENT)
    started = time.perf_counter()
    for _ in range(n):
        bots.classify(AGENT)
    return (time.perf_counter() - started) / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    bots.warm_up()
    new = statistics.median(per_call_new(2000, rep) for rep in range(args.reps))
    hit = statistics.median(per_call_memoised(20_000) for _ in range(args.reps))
    print(f"bot check: {new * 1e6:.1f} µs for a new agent, {hit * 1e6:.2f} µs memoised")
    within = new < NEW_AGENT_BUDGET and hit < MEMOISED_BUDGET
    if not within:
        print("over budget (1 ms new, 20 µs memoised)", file=sys.stderr)
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
