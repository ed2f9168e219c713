"""Placements over SQLite and PostgreSQL, below HTTP: the serve with its real cache and
database, the rotation, the rules, the rollups and the consistency promise."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from tests.support.waiting import wait_until
from tests.unit.test_placements_domain import CHI2_999, chi_square

from bannertrack.cache import MemoryCache
from bannertrack.caching.cached_repository import CachedRepository
from bannertrack.caching.placements import CachedPlacements
from bannertrack.clicks.impressions import ImpressionBatcher
from bannertrack.clicks.privacy import VisitorHasher
from bannertrack.clicks.recording import Visit
from bannertrack.clicks.signing import ClickSigner
from bannertrack.db.repository import SqlRepository
from bannertrack.models import (
    BannerCreate,
    BannerUpdate,
    ClickIn,
    PlacementBanner,
    PlacementCreate,
)
from bannertrack.placements.caps import DailyCaps
from bannertrack.placements.serve import Server

DESKTOP = b"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
MOBILE = b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148 Safari/604.1"
DE, US = "5.9.0.1", "8.8.8.8"  # addresses iptocc places in Germany and the US


def scope(address: str = US, agent: bytes = DESKTOP) -> Visit:
    """A serve request's facts, as the HTTP layer reads them (``api.tracking.visit_of``)."""
    return Visit(
        query_string="",
        counts=True,
        peer=address,
        forwarded_for=None,
        user_agent=agent.decode(),
        referrer=None,
    )


def uncounted(visit: Visit) -> Visit:
    return msgspec.structs.replace(visit, counts=False)


@dataclass
class Stack:
    database: SqlRepository
    cached: CachedRepository
    placements: CachedPlacements
    impressions: ImpressionBatcher
    server: Server


@pytest.fixture
async def stack(database_url: str) -> AsyncIterator[Stack]:
    database = SqlRepository.from_url(database_url)
    cache = MemoryCache(max_entries=10_000)
    cached = CachedRepository(database, cache)
    placements = CachedPlacements(database, cache, cached.invalidate)
    impressions = ImpressionBatcher(cached)
    server = Server(
        candidates=placements.candidates,
        impressions=impressions,
        hasher=VisitorHasher(),
        signer=ClickSigner(b"s" * 32),
        trusted_proxies=(),
        caps=DailyCaps(),
        rng=random.Random(20261206),
    )
    try:
        yield Stack(database, cached, placements, impressions, server)
    finally:
        await database.close()


async def new_banner(stack: Stack, i: int, **extra: Any) -> int:
    data = BannerCreate(
        name=f"b{i}",
        image_url=f"https://cdn.example.com/{i}.png",
        target_url=f"https://shop.example.com/{i}",
        **extra,
    )
    return (await stack.cached.create_banner(data)).id


async def new_placement(stack: Stack, weights: dict[int, int]) -> int:
    placement = await stack.placements.create_placement(PlacementCreate(name="top", width=300))
    banners = [PlacementBanner(banner_id=b, weight=w) for b, w in weights.items()]
    assert await stack.placements.set_placement_banners(placement.id, banners) is not None
    return placement.id


async def test_10000_serves_follow_the_weights_and_never_break_a_rule(stack: Stack) -> None:
    now = datetime.now(UTC)
    weights = {await new_banner(stack, i): w for i, w in enumerate((6, 3, 1))}
    # Banners that are in the placement but must never be served to these requests.
    never = {
        await new_banner(stack, 10, active=False): 100,
        await new_banner(stack, 11, starts_at=now + timedelta(days=1)): 100,
        await new_banner(stack, 12, ends_at=now - timedelta(seconds=1)): 100,
        await new_banner(stack, 13, countries=("DE",)): 100,
        await new_banner(stack, 14, devices=("mobile",)): 100,
    }
    capped = await new_banner(stack, 15, cap_per_day=3)
    placement = await new_placement(stack, {**weights, **never, capped: 1000})
    seen: Counter[int] = Counter()
    answered = 0
    for _ in range(10_000 + 3):
        served = await stack.server.serve(placement, scope())
        assert served is not None
        answered += 1
        seen[served.banner.id] += 1
    assert seen[capped] == 3  # the cap: all one visitor (one address and agent)
    assert not set(seen) & set(never), seen
    del seen[capped]
    total = sum(weights.values())
    for b, w in weights.items():
        assert abs(seen[b] / 10_000 - w / total) < 0.02, seen
    assert chi_square(seen, weights) < CHI2_999[len(weights) - 1]
    # Every serve answered counted one impression of its banner, in the placement too.
    assert stack.impressions.counted == answered
    await stack.impressions.flush()
    stats = await stack.database.placement_stats(
        placement, now - timedelta(minutes=5), datetime.now(UTC) + timedelta(minutes=5)
    )
    assert stats is not None and stats.impressions == answered
    assert {b.banner_id: b.impressions for b in stats.banners} == {**seen, capped: 3}
    totals = await stack.database.impressions([*weights, capped])
    assert sum(totals.values()) == answered


async def test_targeting_serves_the_matching_request_only(stack: Stack) -> None:
    german = await new_banner(stack, 1, countries=("DE", "AT"), devices=("mobile",))
    placement = await new_placement(stack, {german: 1})
    served = await stack.server.serve(placement, scope(DE, MOBILE))
    assert served is not None and served.banner.id == german
    for address, agent in ((US, MOBILE), (DE, DESKTOP), ("10.0.0.1", MOBILE)):
        assert await stack.server.serve(placement, scope(address, agent)) is None


async def test_a_bot_is_served_but_not_counted(stack: Stack) -> None:
    b = await new_banner(stack, 1)
    placement = await new_placement(stack, {b: 1})
    served = await stack.server.serve(placement, scope(agent=b"Googlebot/2.1"))
    assert served is not None and stack.impressions.counted == 0


async def test_a_warm_serve_reads_no_database(stack: Stack) -> None:
    b = await new_banner(stack, 1, cap_per_day=1000)
    placement = await new_placement(stack, {b: 1})
    assert await stack.server.serve(placement, scope()) is not None  # warms
    before = stack.database.queries.count
    for _ in range(200):
        assert await stack.server.serve(placement, scope()) is not None
    assert stack.database.queries.count == before
    # Negative control: a cold key does read it.
    await stack.cached.invalidate(prefixes=("placement:",))
    assert await stack.server.serve(placement, scope()) is not None
    assert stack.database.queries.count > before


async def test_no_serve_shows_a_paused_banner_once_the_pause_returned(stack: Stack) -> None:
    """Serves run all the time while the banner is paused; from the moment the update
    returned, none may pick it. The negative control: before the pause, some did."""
    paused = await new_banner(stack, 1)
    other = await new_banner(stack, 2)
    placement = await new_placement(stack, {paused: 1, other: 1})
    returned = asyncio.Event()
    before: Counter[int] = Counter()
    after: Counter[int] = Counter()
    stop = asyncio.Event()

    async def serving() -> None:
        while not stop.is_set():
            started_after = returned.is_set()
            served = await stack.server.serve(placement, uncounted(scope()))
            assert served is not None
            (after if started_after else before)[served.banner.id] += 1
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(serving()) for _ in range(8)]
    try:
        # Waited for, not slept for: on a busy machine 50 ms once saw no serve at all.
        await wait_until(lambda: before[paused] > 0, what=lambda: f"before: {before}")
        await stack.cached.update_banner(paused, BannerUpdate(active=False))
        returned.set()
        await wait_until(lambda: after[other] >= 50, what=lambda: f"after: {after}")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    assert before[paused] > 0, before  # the control: it was being served
    assert after[other] >= 50 and after[paused] == 0, after


async def test_a_retargeted_or_ended_banner_leaves_at_once(stack: Stack) -> None:
    b = await new_banner(stack, 1)
    placement = await new_placement(stack, {b: 1})
    assert await stack.server.serve(placement, uncounted(scope())) is not None
    await stack.cached.update_banner(b, BannerUpdate(countries=("FR",)))
    assert await stack.server.serve(placement, uncounted(scope())) is None
    await stack.cached.update_banner(b, BannerUpdate(countries=None))
    assert await stack.server.serve(placement, uncounted(scope())) is not None
    await stack.cached.update_banner(b, BannerUpdate(ends_at=datetime.now(UTC)))
    assert await stack.server.serve(placement, uncounted(scope())) is None


async def test_a_deleted_banner_leaves_every_placement(stack: Stack) -> None:
    gone = await new_banner(stack, 1)
    kept = await new_banner(stack, 2)
    first = await new_placement(stack, {gone: 5, kept: 1})
    second = await new_placement(stack, {gone: 1})
    for p in (first, second):
        assert await stack.server.serve(p, uncounted(scope())) is not None  # cached
    assert await stack.cached.delete_banner(gone)
    listed = await stack.placements.placement_banners(first)
    assert listed is not None and [b.banner_id for b in listed.banners] == [kept]
    listed = await stack.placements.placement_banners(second)
    assert listed is not None and listed.banners == ()
    for _ in range(50):
        served = await stack.server.serve(first, uncounted(scope()))
        assert served is not None and served.banner.id == kept
    assert await stack.server.serve(second, uncounted(scope())) is None


async def test_clicks_through_a_placement_are_rolled_up_in_their_batch(stack: Stack) -> None:
    b = await new_banner(stack, 1)
    placement = await new_placement(stack, {b: 1})
    now = datetime.now(UTC)
    batch = [
        ClickIn(banner_id=b, occurred_at=now, visitor="v1", placement_id=placement,
                signature="valid"),
        ClickIn(banner_id=b, occurred_at=now, visitor="v1", placement_id=placement,
                signature="valid"),  # a repeat
        ClickIn(banner_id=b, occurred_at=now, visitor="v2", placement_id=placement,
                signature="expired", bot=True, bot_reason="signature_expired"),
        ClickIn(banner_id=b, occurred_at=now, visitor="v3", signature="tampered", bot=True,
                bot_reason="signature_tampered"),  # no placement: not counted there
        ClickIn(banner_id=b, occurred_at=now, visitor="v4"),  # a plain link
    ]  # fmt: skip
    recorded = await stack.cached.record_clicks(batch)
    assert [r is not None and r.repeat for r in recorded] == [False, True, False, False, False]
    stats = await stack.database.placement_stats(
        placement, now - timedelta(minutes=1), now + timedelta(minutes=1)
    )
    assert stats is not None
    assert (stats.clicks, stats.valid_clicks) == (3, 1)
    click_stats = await stack.database.click_stats(b)
    assert click_stats is not None
    assert (click_stats.total_clicks, click_stats.valid_clicks, click_stats.bot_clicks) == (5, 2, 2)
    # by=placement: the placement's clicks under its id, the rest as "(none)".
    lo, hi = now - timedelta(days=1), now + timedelta(days=1)
    for banner_id in (b, None):
        for count, mine, rest in (("total", 3, 2), ("valid", 1, 1)):
            found = await stack.cached.breakdown(banner_id, "placement", lo, hi, count)  # type: ignore[arg-type]
            assert found is not None
            assert {i.value: i.clicks for i in found.items} == {
                str(placement): mine,
                "(none)": rest,
            }


async def test_a_deleted_placement_is_gone_with_its_counts(stack: Stack) -> None:
    b = await new_banner(stack, 1)
    placement = await new_placement(stack, {b: 1})
    assert await stack.server.serve(placement, scope()) is not None
    await stack.impressions.flush()
    assert await stack.placements.delete_placement(placement)
    assert await stack.placements.get_placement(placement) is None
    with pytest.raises(Exception, match="not found"):
        await stack.server.serve(placement, scope())
    assert not await stack.placements.delete_placement(placement)
