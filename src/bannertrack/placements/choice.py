"""Which of a placement's banners a request may be served, and the pick by weight.

Eligible: active (the cached candidates hold only active banners), inside its schedule
(``starts_at <= now < ends_at``, either side open), matching its targeting (the request's
country among ``countries``, its device class among ``devices``; a request whose country
or device is unknown matches only banners that do not target by it) and under its cap.
The pick draws one number from ``rng`` and walks the cumulative weights, so over many
serves each eligible banner's share tends to its weight's share of the eligible total.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import accumulate

from bannertrack.models import Banner, Candidate


def in_schedule(banner: Banner, now: datetime) -> bool:
    if banner.starts_at is not None and now < banner.starts_at:
        return False
    return banner.ends_at is None or now < banner.ends_at


def targeted(banner: Banner, country: str | None, device: str | None) -> bool:
    if banner.countries and country not in banner.countries:
        return False
    return not banner.devices or device in banner.devices


def eligible(
    candidates: Sequence[Candidate],
    now: datetime,
    country: str | None,
    device: str | None,
    under_cap: Callable[[Banner], bool],
) -> list[Candidate]:
    """The candidates this request may be served; ``under_cap`` is asked only of banners
    with a cap, after every other rule passed."""
    return [
        c
        for c in candidates
        if c.banner.active
        and in_schedule(c.banner, now)
        and targeted(c.banner, country, device)
        and (c.banner.cap_per_day is None or under_cap(c.banner))
    ]


def pick(candidates: Sequence[Candidate], rng: random.Random) -> Candidate | None:
    """One candidate at random by weight; ``None`` when there is none."""
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    totals = list(accumulate(c.weight for c in candidates))
    return candidates[bisect_right(totals, rng.random() * totals[-1])]
