"""A program a developer writes against a client generated from /schema/openapi.json.

tests/e2e/test_generated_client.py generates ``bannertrack_client`` with
openapi-python-client from a running server's schema, runs ``mypy --strict`` over this
file, then runs it against that server. Every figure it reads must be typed as present
(``valid_clicks / total_clicks`` type-checks only if the schema says the server always
sends both).
"""

from __future__ import annotations

import json
import sys
from urllib.parse import parse_qs, urlsplit

import httpx
from bannertrack_client import AuthenticatedClient, Client
from bannertrack_client.api.banners import create_banner, get_banner_stats, record_click
from bannertrack_client.api.breakdowns import get_banner_breakdown
from bannertrack_client.api.cache import get_cache_stats
from bannertrack_client.api.conversions import report_conversion
from bannertrack_client.api.operations import get_health
from bannertrack_client.api.placements import create_placement, set_placement_banners
from bannertrack_client.api.tracking import serve_placement
from bannertrack_client.models import (
    Banner,
    BannerCreate,
    Breakdown,
    BreakdownDimension,
    CacheStatsBody,
    ClickReport,
    ClickStats,
    Conversion,
    ConversionReport,
    Health,
    Placement,
    PlacementBanner,
    PlacementBanners,
    PlacementBannersIn,
    PlacementCreate,
    RecordedClick,
    ServeFormat,
)

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
CRAWLER = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def valid_share(stats: ClickStats) -> float:
    return stats.valid_clicks / stats.total_clicks if stats.total_clicks else 0.0


def main(url: str, token: str) -> None:
    admin = AuthenticatedClient(base_url=url, token=token, raise_on_unexpected_status=True)
    anyone = Client(base_url=url, raise_on_unexpected_status=True)
    new = BannerCreate(
        name="typed client",
        image_url="https://cdn.example.com/typed.png",
        target_url="https://shop.example.com/typed",
        click_id_param="bt_click",
    )
    banner = create_banner.sync(client=admin, body=new)
    assert isinstance(banner, Banner), banner
    for ip, agent in (("203.0.113.1", BROWSER), ("203.0.113.2", BROWSER), ("203.0.113.3", CRAWLER)):
        click = record_click.sync(
            banner.id, client=admin, body=ClickReport(ip=ip, user_agent=agent)
        )
        assert isinstance(click, RecordedClick), click
    stats = get_banner_stats.sync(banner.id, client=anyone)
    assert isinstance(stats, ClickStats), stats
    share = valid_share(stats)
    bots: int = stats.bot_clicks
    breakdown = get_banner_breakdown.sync(banner.id, client=anyone, by=BreakdownDimension.BROWSER)
    assert isinstance(breakdown, Breakdown), breakdown
    browsers = {item.value: item.clicks for item in breakdown.items}
    cache = get_cache_stats.sync(client=anyone)
    assert isinstance(cache, CacheStatsBody), cache
    ratio: float = cache.hit_ratio
    pids = [worker.pid for worker in cache.workers]
    health = get_health.sync(client=anyone)
    assert isinstance(health, Health), health
    placement = create_placement.sync(client=admin, body=PlacementCreate(name="sidebar"))
    assert isinstance(placement, Placement), placement
    weighted = PlacementBannersIn(banners=[PlacementBanner(banner_id=banner.id, weight=1)])
    listed = set_placement_banners.sync(placement.id, client=admin, body=weighted)
    assert isinstance(listed, PlacementBanners), listed
    # The serve answers HTML or JSON under one operation, so the client hands back text.
    served = serve_placement.sync(placement.id, client=anyone, format_=ServeFormat.JSON)
    assert isinstance(served, str), served
    click_url = str(json.loads(served)["click_url"])
    assert click_url.startswith(f"{url}/c/{banner.id}?"), click_url
    # A visitor follows the link (the click id rides on the redirect), then the shop's
    # server reports the sign-up that click brought.
    location = httpx.get(f"{url}/c/{banner.id}", headers={"User-Agent": BROWSER}).headers[
        "location"
    ]
    click_id = parse_qs(urlsplit(location).query)["bt_click"][0]
    report = ConversionReport(click_id=click_id, goal="signup")
    conversion = report_conversion.sync(client=admin, body=report)
    assert isinstance(conversion, Conversion), conversion
    after = get_banner_stats.sync(banner.id, client=anyone)
    assert isinstance(after, ClickStats), after
    converted: int = after.conversions
    print(f"banner {banner.id}: valid {stats.valid_clicks} of {stats.total_clicks} ({share:.4f})")
    print(f"bots {bots}; by browser {sorted(browsers.items())}")
    print(f"cache hit ratio {ratio:.4f} over workers {pids}; health {health.status.value}")
    print(f"placement {placement.id} served banner {banner.id}: {click_url}")
    print(f"conversions {converted} ({conversion.goal} of click {conversion.click_id})")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
