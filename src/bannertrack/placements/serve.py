"""One serve of a placement: from the cached candidates to the banner and its click URL.

``Server.serve`` reads the placement's candidates (a cache hit once warm: no database),
judges the request (country from the address through trusted proxies, then dropped;
device class and bot verdict from the user agent, as a click's facts are), keeps the
eligible banners (``choice``), picks one by weight, counts the impression (summed in
memory, written with the others of its interval, with the placement's rollup) and the
visitor's serve against the cap, and signs the click URL. Only a counted request (a GET
that is no prefetch, from no bot) adds an impression or a serve against the cap; a bot
is still answered.

The visitor key is computed only when a candidate has a cap: the hash costs a little,
and the day's salt is already in memory after the first request of the day.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from bannertrack.clicks.bots import classify
from bannertrack.clicks.facts import agent_facts, country_of
from bannertrack.clicks.impressions import ImpressionBatcher
from bannertrack.clicks.privacy import IPNetwork, VisitorHasher, client_address
from bannertrack.clicks.recording import Visit
from bannertrack.clicks.signing import ClickSigner
from bannertrack.errors import NotFoundError
from bannertrack.models import Banner, Candidates
from bannertrack.placements.caps import DailyCaps
from bannertrack.placements.choice import eligible, pick
from bannertrack.timeutil import utcnow


@lru_cache(maxsize=4096)
def agent_verdict(user_agent: str | None) -> tuple[str | None, bool]:
    """The device class and whether it is a bot: real traffic repeats a few thousand
    agents, and the bot patterns cost tens of microseconds a miss."""
    return agent_facts(user_agent).device, classify(user_agent).bot


@dataclass(frozen=True, slots=True)
class Served:
    """What a serve answers: the banner, its size in the placement and its click URL."""

    banner: Banner
    placement_id: int
    click_path: str  # /c/{banner_id}?p=&ts=&sig=; the HTTP layer makes it absolute
    width: int | None
    height: int | None


@dataclass(slots=True)
class Server:
    candidates: Callable[[int], Awaitable[Candidates | None]]
    impressions: ImpressionBatcher
    hasher: VisitorHasher
    signer: ClickSigner
    trusted_proxies: tuple[IPNetwork, ...]
    caps: DailyCaps = field(default_factory=DailyCaps)
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], datetime] = utcnow

    async def serve(self, placement_id: int, visit: Visit) -> Served | None:
        """The banner to show, or ``None`` when none is eligible; ``NotFoundError`` for an
        unknown placement. ``visit.counts``: a GET that is no prefetch (a HEAD is answered
        and not counted)."""
        found = await self.candidates(placement_id)
        if found is None:
            raise NotFoundError(f"placement {placement_id} not found")
        if not found.banners:
            return None
        address = client_address(visit.peer, visit.forwarded_for, self.trusted_proxies)
        agent = visit.user_agent
        now = self.clock()
        day = now.date()
        visitor: str | None = None
        if any(c.banner.cap_per_day is not None for c in found.banners):
            visitor = await self.hasher.visitor(address, agent)

        def under_cap(banner: Banner) -> bool:
            assert banner.cap_per_day is not None
            return self.caps.under(day, visitor, banner.id, banner.cap_per_day)

        # The address goes no further than the country and the visitor key.
        country = country_of(address)
        device, bot = agent_verdict(agent)
        chosen = pick(eligible(found.banners, now, country, device, under_cap), self.rng)
        if chosen is None:
            return None
        banner = chosen.banner
        if visit.counts and not bot:
            self.impressions.add(banner.id, placement_id)
            if banner.cap_per_day is not None:
                self.caps.count(day, visitor, banner.id)
        placement = found.placement
        return Served(
            banner=banner,
            placement_id=placement_id,
            click_path=f"/c/{banner.id}?{self.signer.query(banner.id, placement_id)}",
            width=placement.width,
            height=placement.height,
        )
