"""The placement domain without a database: the weighted pick, eligibility, caps and the
signed click URL's verdicts."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from bannertrack.clicks.signing import ClickSigner
from bannertrack.models import Banner, Candidate
from bannertrack.placements.caps import DailyCaps
from bannertrack.placements.choice import eligible, pick

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
# Chi-square critical values at p = 0.001 by degrees of freedom: a fair pick fails the
# test once in a thousand seeds; the seed is fixed, so the run is repeatable.
CHI2_999 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47}


def banner(i: int, **extra: object) -> Banner:
    values: dict[str, object] = {
        "id": i,
        "name": f"b{i}",
        "image_url": "https://cdn.example.com/a.png",
        "target_url": "https://a.example/",
        "active": True,
        "forward_query": True,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Banner(**{**values, **extra})  # type: ignore[arg-type]


def chi_square(observed: Counter[int], weights: dict[int, int]) -> float:
    n = sum(observed.values())
    total = sum(weights.values())
    return sum((observed[b] - n * w / total) ** 2 / (n * w / total) for b, w in weights.items())


def test_the_pick_follows_the_weights_over_10000_draws() -> None:
    weights = {1: 5, 2: 3, 3: 1, 4: 1}
    candidates = [Candidate(banner=banner(b), weight=w) for b, w in weights.items()]
    rng = random.Random(20261206)
    seen: Counter[int] = Counter()
    for _ in range(10_000):
        chosen = pick(candidates, rng)
        assert chosen is not None
        seen[chosen.banner.id] += 1
    for b, w in weights.items():
        assert abs(seen[b] / 10_000 - w / 10) < 0.02, (b, seen)
    assert chi_square(seen, weights) < CHI2_999[len(weights) - 1]


def test_the_chi_square_test_catches_a_biased_pick() -> None:
    """Negative control: a pick that ignores the weights fails the same test."""
    weights = {1: 5, 2: 3, 3: 1, 4: 1}
    rng = random.Random(1)
    seen = Counter(rng.choice(list(weights)) for _ in range(10_000))
    assert chi_square(seen, weights) > CHI2_999[3]


def test_no_candidate_no_pick() -> None:
    assert pick([], random.Random(0)) is None


def test_eligibility_schedule_targeting_and_cap() -> None:
    hour = timedelta(hours=1)
    cases = {
        1: banner(1),
        2: banner(2, starts_at=NOW + hour),  # not yet
        3: banner(3, ends_at=NOW),  # ended (the end is exclusive)
        4: banner(4, starts_at=NOW - hour, ends_at=NOW + hour),
        5: banner(5, countries=("AT", "DE")),
        6: banner(6, countries=("FR",)),
        7: banner(7, devices=("mobile",)),
        8: banner(8, devices=("desktop", "tablet")),
        9: banner(9, cap_per_day=2),
        10: banner(10, active=False),
    }
    candidates = [Candidate(banner=b, weight=1) for b in cases.values()]

    def ids(country: str | None, device: str | None, cap_ok: bool) -> set[int]:
        got = eligible(candidates, NOW, country, device, lambda b: cap_ok)
        return {c.banner.id for c in got}

    assert ids("DE", "desktop", True) == {1, 4, 5, 8, 9}
    assert ids("FR", "mobile", False) == {1, 4, 6, 7}
    # Unknown country or device: only banners that do not target by it.
    assert ids(None, None, True) == {1, 4, 9}


def test_the_cap_counts_per_visitor_banner_and_day() -> None:
    caps = DailyCaps(max_entries=3)
    today, tomorrow = date(2026, 12, 6), date(2026, 12, 7)
    assert caps.under(today, "v1", 1, 2)
    caps.count(today, "v1", 1)
    caps.count(today, "v1", 1)
    assert not caps.under(today, "v1", 1, 2)
    assert caps.under(today, "v1", 2, 2) and caps.under(today, "v2", 1, 2)
    assert not caps.under(today, None, 1, 5)  # no visitor key: a capped banner is not served
    caps.count(today, "v2", 1)
    caps.count(today, "v3", 1)
    assert len(caps) == 3
    assert not caps.under(today, "v4", 1, 5)  # full: a new visitor is refused, never over
    assert caps.under(tomorrow, "v1", 1, 2) and len(caps) == 0  # a new day forgets


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


KEY = b"k" * 32


def test_a_signed_url_is_valid_then_expires() -> None:
    clock = Clock(1_800_000_000.0)
    signer = ClickSigner(KEY, validity=60, clock=clock)
    query = signer.query(7, 3)
    assert signer.verdict(7, query) == ("valid", 3, "")
    clock.t += 61
    assert signer.verdict(7, query) == ("expired", 3, "")
    clock.t -= 61 + 120  # dated two minutes in the future: beyond the skew
    assert signer.verdict(7, query).verdict == "expired"


@pytest.mark.parametrize(
    ("change", "verdict"),
    [
        (lambda q: q.replace("p=3", "p=4"), "tampered"),  # another placement
        (lambda q: q.replace("ts=1", "ts=2"), "tampered"),  # another time
        (lambda q: q[:-2] + ("AA" if not q.endswith("AA") else "BB"), "tampered"),
        (lambda q: q.replace("p=3", "p=x"), "tampered"),
        (lambda q: q.split("&sig=")[0], "missing"),
        (lambda q: "p=3", "missing"),
        (lambda q: "sig=abc", "tampered"),
    ],
)
def test_a_changed_or_incomplete_url_is_set_apart(change: object, verdict: str) -> None:
    signer = ClickSigner(KEY, clock=Clock(1_800_000_000.0))
    query = signer.query(7, 3)
    judged = signer.verdict(7, change(query))  # type: ignore[operator]
    assert judged.verdict == verdict
    assert judged.placement_id is None


def test_another_banner_with_the_same_query_is_tampered() -> None:
    signer = ClickSigner(KEY, clock=Clock(1_800_000_000.0))
    assert signer.verdict(8, signer.query(7, 3)).verdict == "tampered"


def test_a_plain_query_is_left_alone_and_p_ts_sig_are_not_forwarded() -> None:
    signer = ClickSigner(KEY, clock=Clock(1_800_000_000.0))
    assert signer.verdict(7, "utm_source=news&x=1") == (None, None, "utm_source=news&x=1")
    assert signer.verdict(7, "") == (None, None, "")
    query = f"utm_source=news&{signer.query(7, 3)}&utm_campaign=xmas"
    assert signer.verdict(7, query) == ("valid", 3, "utm_source=news&utm_campaign=xmas")


def test_the_key_is_not_in_the_repr_and_another_key_does_not_verify() -> None:
    signer = ClickSigner(KEY, clock=Clock(1_800_000_000.0))
    assert "k" * 16 not in repr(signer)
    other = ClickSigner(b"o" * 32, clock=Clock(1_800_000_000.0))
    assert other.verdict(7, signer.query(7, 3)).verdict == "tampered"
