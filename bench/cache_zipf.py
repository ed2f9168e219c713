"""Seeded Zipf key streams for the cache benchmarks (no numpy needed)."""

from __future__ import annotations

import itertools
import random


def zipf_ranks(universe: int, alpha: float, count: int, seed: int) -> list[int]:
    """``count`` draws of ranks ``0..universe-1`` with P(rank r) proportional to 1/(r+1)^alpha.

    Ranks are shuffled onto key ids so that popularity is not correlated with key order.
    """
    rng = random.Random(seed)
    weights = [1.0 / (rank + 1) ** alpha for rank in range(universe)]
    cumulative = list(itertools.accumulate(weights))
    ranks = rng.choices(range(universe), cum_weights=cumulative, k=count)
    ids = list(range(universe))
    rng.shuffle(ids)
    return [ids[rank] for rank in ranks]


def zipf_keys(
    universe: int, alpha: float, count: int, seed: int, prefix: str = "banner:"
) -> list[str]:
    return [f"{prefix}{i}" for i in zipf_ranks(universe, alpha, count, seed)]
