"""Demo data: banners and a realistic spread of clicks over past days.

Popularity follows a Zipf law (a few banners take most clicks) and each day has a
daytime peak, so the statistics, top list and series a new user looks at are shaped
like real traffic. Clicks are written through ``Repository.record_clicks``, the same
path the service uses, so rollups and raw clicks agree.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from bannertrack.models import BannerCreate, ClickIn
from bannertrack.privacy import VisitorHasher, ip_prefix
from bannertrack.repository import Repository

_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
_REFERRERS = ("https://news.example/", "https://blog.example/post", None, "https://search.example/")
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


async def create_banners(repo: Repository, count: int, rng: random.Random) -> list[int]:
    ids = []
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
        ids.append(banner.id)
    return ids


async def generate_clicks(
    banner_ids: list[int],
    total: int,
    days: int,
    now: datetime,
    rng: random.Random,
    batch_size: int = 2000,
) -> AsyncIterator[list[ClickIn]]:
    """Yield batches of clicks; the caller writes them and advances its progress bar."""
    # Cumulative weights once: rng.choices would otherwise re-add them for every click.
    cum_weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(banner_ids))))
    hasher = VisitorHasher()
    span = days * 86400
    batch: list[ClickIn] = []
    for _ in range(total):
        # Daytime peak: accept a uniform instant with probability following the hour.
        while True:
            ago = rng.random() * span
            when = now - timedelta(seconds=ago)
            hour = when.hour + when.minute / 60
            if rng.random() < 0.35 + 0.65 * math.sin(math.pi * ((hour - 6) % 24) / 24) ** 2:
                break
        ip = f"198.51.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        agent = rng.choice(_AGENTS)
        batch.append(
            ClickIn(
                banner_id=rng.choices(banner_ids, cum_weights=cum_weights)[0],
                occurred_at=when,
                user_agent=agent,
                referrer=rng.choice(_REFERRERS),
                visitor=await hasher.visitor(ip, agent),
                ip_prefix=ip_prefix(ip),
            )
        )
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
