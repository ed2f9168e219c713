"""Demo data: banners and a realistic spread of clicks and impressions over past days.

Popularity follows a Zipf law (a few banners take most clicks) and each day has a
daytime peak, so the statistics, top list and series a new user looks at are shaped
like real traffic. The counting features show too: a share of the clicks comes from
crawlers, link previews and clients without a user agent (flagged ``bot``), some
visitors click the same banner again within the hour (flagged ``repeat`` by the
repository, as in production), and every banner has impressions, so CTR means
something. Referrers, utm campaigns, countries (public addresses of a dozen countries)
and phone/desktop browsers come in realistic shares, their facts derived by
``clicks.facts.derive`` like the tracking link's, so breakdowns show real data. Banners
are created at the start of the period and no click predates its
banner. Clicks are written through ``Repository.record_clicks``, the same path the
service uses, so rollups and raw clicks agree.

Three placements (a leaderboard, a sidebar box, an article footer) serve the active
banners by weight; most people's clicks and impressions come through one of them (a
click with a valid signed click URL), the rest through the plain link and pixel, so the
placement statistics and ``by=placement`` show real data.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bannertrack.clicks.bots import classify
from bannertrack.clicks.facts import derive
from bannertrack.clicks.privacy import VisitorHasher
from bannertrack.models import (
    Banner,
    BannerCreate,
    ClickIn,
    ImpressionCount,
    PlacementBanner,
    PlacementCreate,
)
from bannertrack.repository import PlacementStore, Repository
from bannertrack.timeutil import floor_to

# (user agent, weight): a phone-heavy mix like real banner traffic.
_AGENTS = (
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        30,
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        25,
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        20,
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.0 Safari/605.1.15",
        10,
    ),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", 6),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        5,
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.6 Mobile/15E148 Safari/604.1",
        4,
    ),
)
# Crawlers, link previews and a client that sends no agent: recorded, flagged ``bot``.
_BOT_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "python-requests/2.32.3",
    None,
)
_BOT_SHARE = 0.07
_REPEAT_SHARE = 0.06  # clicks followed by the same visitor's second click within the hour
# (referrer, utm query of the link that was clicked, weight)
_SOURCES = (
    ("https://www.google.com/", "", 30),
    (None, "", 18),  # typed in, apps, stripped referrers
    ("https://t.co/", "utm_source=twitter&utm_medium=social&utm_campaign=black-friday", 10),
    (
        "https://l.facebook.com/",
        "utm_source=facebook&utm_medium=cpc&utm_campaign=winter-sale",
        12,
    ),
    (None, "utm_source=newsletter&utm_medium=email&utm_campaign=black-friday", 10),
    ("https://www.reddit.com/r/deals/", "", 6),
    ("https://news.ycombinator.com/", "", 4),
    ("https://www.linkedin.com/", "utm_source=linkedin&utm_medium=social&utm_campaign=b2b", 5),
    ("https://duckduckgo.com/", "", 5),
)
# Public /24s of a dozen countries in iptocc's RIR data: (first three octets, weight).
_NETWORKS = (
    ("72.229.28", 28),  # US
    ("81.2.69", 14),  # GB
    ("5.9.10", 12),  # DE
    ("62.210.16", 9),  # FR
    ("24.48.0", 7),  # CA
    ("145.53.1", 6),  # NL
    ("77.228.64", 5),  # ES
    ("203.2.218", 5),  # AU
    ("1.0.16", 5),  # JP
    ("200.147.3", 5),  # BR
    ("117.192.0", 4),  # IN
)
_TOPICS = (
    "Winter sale",
    "Free shipping",
    "New arrivals",
    "Newsletter",
    "App download",
    "Gift cards",
    "Clearance",
    "Loyalty club",
    "Webinar",
    "Black Friday",
)


def _picker(rows: tuple[tuple[Any, ...], ...]) -> Callable[[random.Random], tuple[Any, ...]]:
    """Draws a row by its last field (a weight); the cumulative weights summed once."""
    cum = list(itertools.accumulate(row[-1] for row in rows))
    return lambda rng: rng.choices(rows, cum_weights=cum)[0]


async def create_banners(repo: Repository, count: int, rng: random.Random) -> list[Banner]:
    """Banners dated by the repository's clock: the CLI sets it to the period's start."""
    banners = []
    for i in range(count):
        topic = _TOPICS[i % len(_TOPICS)]
        banner = await repo.create_banner(
            BannerCreate(
                name=f"{topic} #{i + 1}",
                image_url=f"https://cdn.example.com/banners/{i + 1}.png",
                target_url=f"https://shop.example.com/landing/{i + 1}?campaign=demo",
                active=rng.random() > 0.1,
            )
        )
        banners.append(banner)
    return banners


_PLACEMENTS = (("Home, top", 728, 90), ("Sidebar", 300, 250), ("Article footer", 468, 60))
_THROUGH_PLACEMENT = 0.7  # people's clicks that came through a placement's click URL

Placed = dict[int, tuple[tuple[Banner, ...], tuple[int, ...]]]
"""Placement id -> its banners and their weights, in the same order."""


async def create_placements(
    store: PlacementStore, banners: list[Banner], rng: random.Random
) -> Placed:
    """Three placements, each serving about half of the active banners by random weights."""
    placed: Placed = {}
    active = [b for b in banners if b.active]
    for name, width, height in _PLACEMENTS:
        placement = await store.create_placement(
            PlacementCreate(name=name, width=width, height=height)
        )
        chosen = rng.sample(active, max(1, len(active) // 2)) if active else []
        weights = [PlacementBanner(banner_id=b.id, weight=rng.randint(1, 10)) for b in chosen]
        await store.set_placement_banners(placement.id, weights)
        if chosen:
            placed[placement.id] = (tuple(chosen), tuple(w.weight for w in weights))
    return placed


@dataclass(slots=True)
class DemoTally:
    """What the generator sent, for the summary line and the impressions."""

    clicks: int = 0
    bots: int = 0
    follow_ups: int = 0
    # (banner, placement or None, hour) -> people's clicks
    human_per_hour: Counter[tuple[int, int | None, datetime]] = field(default_factory=Counter)


def _instant(rng: random.Random, start: datetime, now: datetime) -> datetime:
    """A moment in [start, now], drawn with a daytime peak."""
    span = (now - start).total_seconds()
    while True:
        when = now - timedelta(seconds=rng.random() * span)
        hour = when.hour + when.minute / 60
        if rng.random() < 0.35 + 0.65 * math.sin(math.pi * ((hour - 6) % 24) / 24) ** 2:
            return when


async def _click(
    hasher: VisitorHasher,
    tally: DemoTally,
    banner: Banner,
    when: datetime,
    ip: str,
    agent: str | None,
    source: tuple[Any, ...],
    placement: int | None = None,
) -> ClickIn:
    """One click with the facts the tracking link would have derived, counted in ``tally``;
    through ``placement``'s signed click URL when one is given."""
    verdict = classify(agent)
    tally.clicks += 1
    if verdict.bot:
        tally.bots += 1
    else:
        tally.human_per_hour[(banner.id, placement, floor_to(when, 3600))] += 1
    return ClickIn(
        banner_id=banner.id,
        occurred_at=when,
        user_agent=agent,
        referrer=source[0],
        visitor=await hasher.visitor(ip, agent),
        bot=verdict.bot,
        bot_reason=verdict.reason,
        facts=derive(ip, agent, source[0], source[1]),
        placement_id=placement,
        signature=None if placement is None else "valid",
    )


async def generate_clicks(
    banners: list[Banner],
    total: int,
    now: datetime,
    rng: random.Random,
    tally: DemoTally,
    batch_size: int = 2000,
    placed: Placed | None = None,
) -> AsyncIterator[list[ClickIn]]:
    """Yield batches of ``total`` clicks; the caller writes them and advances its progress.

    No click is earlier than its banner's ``created_at`` or later than ``now``.
    """
    # Cumulative weights once: rng.choices would otherwise re-add them for every click.
    cum_weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(banners))))
    hasher = VisitorHasher()
    batch: list[ClickIn] = []

    agents, sources, networks = _picker(_AGENTS), _picker(_SOURCES), _picker(_NETWORKS)

    spots = sorted((placed or {}).items())
    while tally.clicks < total:
        bot = rng.random() < _BOT_SHARE
        placement: int | None = None
        if spots and not bot and rng.random() < _THROUGH_PLACEMENT:
            # Through a placement, the banner is the one its weighted pick served, so the
            # placement's served views and clicks follow its weights as a real serve's do.
            placement, (served, weights) = rng.choice(spots)
            banner = rng.choices(served, weights=weights)[0]
        else:
            banner = rng.choices(banners, cum_weights=cum_weights)[0]
        when = _instant(rng, banner.created_at, now)
        ip = f"{networks(rng)[0]}.{rng.randrange(1, 255)}"
        agent = rng.choice(_BOT_AGENTS) if bot else agents(rng)[0]
        source = sources(rng)
        batch.append(await _click(hasher, tally, banner, when, ip, agent, source, placement))
        again = when + timedelta(minutes=rng.uniform(1, 40))
        if not bot and tally.clicks < total and again <= now and rng.random() < _REPEAT_SHARE:
            # The same visitor, the same banner, within the dedup window: a repeat.
            second = await _click(hasher, tally, banner, again, ip, agent, source, placement)
            batch.append(second)
            tally.follow_ups += 1
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def impressions_for(tally: DemoTally, rng: random.Random) -> list[ImpressionCount]:
    """Impressions per banner and hour, 15 to 60 per human click: a CTR of about 2-7 %."""
    return [
        ImpressionCount(
            banner_id=b, minute=hour, count=round(n * rng.uniform(15, 60)), placement_id=p
        )
        for (b, p, hour), n in sorted(
            tally.human_per_hour.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0, kv[0][2])
        )
    ]
