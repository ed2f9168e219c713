"""Real-looking examples for the OpenAPI document, built from the models themselves.

Each example is a model instance encoded the way the API encodes it, so an example can
never drift from the shape it illustrates: a renamed or new field breaks the build here,
not a reader's client.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec

from bannertrack.clicks.recording import ClickReport
from bannertrack.conversions.values import (
    Conversion,
    ConversionReport,
    ConversionTotals,
    GoalTotals,
)
from bannertrack.models import (
    Banner,
    BannerCreate,
    BannerPage,
    BannerUpdate,
    BannerWithStats,
    Breakdown,
    BreakdownItem,
    ClickStats,
    Placement,
    PlacementBanner,
    PlacementBanners,
    PlacementBannersIn,
    PlacementBannerStats,
    PlacementCreate,
    PlacementPage,
    PlacementStats,
    PlacementUpdate,
    RangeTotals,
    RecordedClick,
    Series,
    SeriesPoint,
    TopBanner,
    TopBanners,
    TrafficPoint,
    TrafficSeries,
)

_CREATED = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
_NOW = datetime(2026, 11, 30, 10, 15, tzinfo=UTC)
_DAY = datetime(2026, 11, 29, tzinfo=UTC)

_BANNER = Banner(
    id=7,
    name="Winter sale",
    image_url="https://cdn.example.com/banners/winter.png",
    target_url="https://shop.example.com/winter?campaign=banner",
    active=True,
    forward_query=True,
    created_at=_CREATED,
    updated_at=_CREATED,
    starts_at=datetime(2026, 12, 1, tzinfo=UTC),
    ends_at=datetime(2027, 1, 7, tzinfo=UTC),
    countries=("AT", "CH", "DE"),
    devices=(),
    cap_per_day=3,
)
_PLACEMENT = Placement(
    id=3, name="Home, top", width=728, height=90, created_at=_CREATED, updated_at=_CREATED
)
_WEIGHTS = (PlacementBanner(banner_id=7, weight=3), PlacementBanner(banner_id=9, weight=1))
_STATS = ClickStats(
    banner_id=7,
    total_clicks=1532,
    clicks_last_hour=41,
    clicks_last_24h=388,
    first_click_at=datetime(2026, 11, 2, 9, 41, 7, tzinfo=UTC),
    last_click_at=datetime(2026, 11, 30, 10, 14, 52, tzinfo=UTC),
    valid_clicks=1311,
    bot_clicks=142,
    repeat_clicks=79,
    impressions=48210,
    ctr=1311 / 48210,
    conversions=37,
    conversion_rate=37 / 1311,
    revenue={"EUR": "1842.60"},
)
_CLICK_ID = "AQAGYfXSSJ9InA5DAW_FoL-8qzIlLvOlGEt9"

_MODELS: tuple[msgspec.Struct, ...] = (
    _BANNER,
    BannerCreate(
        name="Winter sale",
        image_url="https://cdn.example.com/banners/winter.png",
        target_url="https://shop.example.com/winter?campaign=banner",
    ),
    BannerUpdate(name="Winter sale (last days)", active=True),
    _PLACEMENT,
    PlacementCreate(name="Home, top", width=728, height=90),
    PlacementUpdate(name="Home, top (leaderboard)"),
    PlacementPage(items=(_PLACEMENT,), total=1, offset=0, limit=50),
    PlacementBannersIn(banners=_WEIGHTS),
    PlacementBanners(placement_id=3, banners=_WEIGHTS),
    PlacementBanner(banner_id=7, weight=3),
    PlacementStats(
        placement_id=3,
        from_=_DAY,
        to=_NOW,
        impressions=12000,
        clicks=161,
        valid_clicks=140,
        ctr=140 / 12000,
        banners=(
            PlacementBannerStats(
                banner_id=7,
                impressions=9000,
                clicks=121,
                valid_clicks=105,
                ctr=105 / 9000,
                conversions=4,
                conversion_rate=4 / 105,
                revenue={"EUR": "79.60"},
            ),
            PlacementBannerStats(
                banner_id=9, impressions=3000, clicks=40, valid_clicks=35, ctr=35 / 3000
            ),
        ),
        conversions=4,
        conversion_rate=4 / 140,
        revenue={"EUR": "79.60"},
    ),
    ClickReport(
        ip="203.0.113.9",
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15",
        referrer="https://news.example/article",
    ),
    RecordedClick(id=90211, banner_id=7, occurred_at=_NOW),
    _STATS,
    BannerWithStats(banner=_BANNER, stats=_STATS),
    TopBanners(limit=1, items=(TopBanner(banner=_BANNER, clicks=1532),)),
    Series(
        banner_id=7,
        from_=_DAY,
        to=datetime(2026, 11, 29, 2, tzinfo=UTC),
        interval="hour",
        points=(
            SeriesPoint(ts=_DAY, clicks=12),
            SeriesPoint(ts=datetime(2026, 11, 29, 1, tzinfo=UTC), clicks=9),
            SeriesPoint(ts=datetime(2026, 11, 29, 2, tzinfo=UTC), clicks=0),
        ),
    ),
    BannerPage(items=(_BANNER,), total=1, offset=0, limit=50),
    Breakdown(
        banner_id=7,
        by="country",
        from_=datetime(2026, 11, 1, tzinfo=UTC),
        to=datetime(2026, 12, 1, tzinfo=UTC),
        items=(BreakdownItem(value="DE", clicks=611), BreakdownItem(value="FR", clicks=402)),
        other=519,
    ),
    RangeTotals(
        banner_id=None,
        from_=_DAY,
        to=_NOW,
        total_clicks=388,
        valid_clicks=331,
        bot_clicks=38,
        repeat_clicks=19,
        impressions=11804,
        ctr=331 / 11804,
        conversions=9,
        conversion_rate=9 / 331,
        revenue={"EUR": "438.20", "USD": "59.00"},
    ),
    ConversionReport(
        click_id=_CLICK_ID, goal="sale", value=Decimal("19.90"), currency="EUR", occurred_at=_NOW
    ),
    Conversion(
        id=5120,
        click_id=_CLICK_ID,
        goal="sale",
        banner_id=7,
        placement_id=None,
        value="19.90",
        currency="EUR",
        occurred_at=_NOW,
    ),
    ConversionTotals(
        banner_id=7,
        placement_id=None,
        from_=_DAY,
        to=_NOW,
        conversions=12,
        revenue={"EUR": "238.80"},
        goals=(
            GoalTotals(goal="sale", conversions=12 - 7, revenue={"EUR": "238.80"}),
            GoalTotals(goal="signup", conversions=7),
        ),
    ),
    TrafficSeries(
        banner_id=None,
        from_=_DAY,
        to=datetime(2026, 11, 29, 2, tzinfo=UTC),
        interval="hour",
        points=(
            TrafficPoint(ts=_DAY, valid_clicks=10, bot_clicks=1, repeat_clicks=1, impressions=340),
            TrafficPoint(
                ts=datetime(2026, 11, 29, 1, tzinfo=UTC),
                valid_clicks=7,
                bot_clicks=2,
                repeat_clicks=0,
                impressions=295,
            ),
        ),
    ),
)

EXAMPLES: dict[str, object] = {type(m).__name__: msgspec.to_builtins(m) for m in _MODELS}
"""Component schema name -> an example value, as the API encodes it."""

REQUEST_STRUCTS: tuple[type[msgspec.Struct], ...] = (
    BannerCreate,
    BannerUpdate,
    ClickReport,
    PlacementCreate,
    PlacementUpdate,
    PlacementBannersIn,
    PlacementBanner,
    ConversionReport,
)
"""Request bodies: those that refuse unknown fields say so in the document."""

OPTIONAL_BODIES: tuple[tuple[str, str], ...] = (("/api/v1/banners/{banner_id}/clicks", "post"),)
"""(path, method) of operations whose body may be left out entirely."""
