"""Domain values, shared by the wire (JSON) and the cache.

They are frozen msgspec Structs: msgspec encodes them without an intermediate dict,
and a value handed out of the cache cannot be changed by the caller who got it.

Longer than 300 lines on purpose: it is a catalogue of small value types that every
layer names (no logic beyond a derived figure or two), and one place to read every
shape the wire and the cache carry (banners, clicks, counts, placements) is worth more
than a split by topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Literal, NamedTuple

import msgspec

Interval = Literal["minute", "hour", "day"]
# What a ranking or a series counts: every recorded click, or only the valid ones.
CountKind = Literal["total", "valid"]
# What a breakdown counts: clicks (every one, or the valid ones), or the conversions
# attributed to clicks, grouped by the converting click's facts.
BreakdownCount = Literal["total", "valid", "conversions"]
# What a breakdown groups clicks by (docs/counting.md says how each is derived). The
# first eight are facts of the click (DIMENSIONS, in click_breakdowns); "placement" is
# the placement whose signed click URL brought it (read from placement_minutes).
Dimension = Literal[
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "device",
    "browser",
    "os",
    "placement",
]
DIMENSIONS: tuple[Dimension, ...] = (
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "device",
    "browser",
    "os",
)

UrlStr = Annotated[str, msgspec.Meta(min_length=8, max_length=2048)]
NameStr = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# Targeting of placements' serves (placements/rules.py checks what a type cannot).
Device = Literal["mobile", "tablet", "desktop"]
DEVICES: tuple[Device, ...] = ("mobile", "tablet", "desktop")
# What a placement's serve (GET /p/{id}) answers: an iframe-ready page or JSON.
ServeFormat = Literal["html", "json"]
# ISO 3166-1 alpha-2, the officially assigned codes (249), as the standard lists them.
_ASSIGNED = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRIES: frozenset[str] = frozenset(_ASSIGNED.split())
CountryCode = Annotated[
    str,
    msgspec.Meta(
        pattern="^[A-Z]{2}$",
        description="An ISO 3166-1 alpha-2 code, upper case; one ISO has not assigned "
        "(XX, say) is refused with 400.",
    ),
]
# RFC 3339: a time without an offset is refused.
AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]
Countries = Annotated[tuple[CountryCode, ...], msgspec.Meta(max_length=249)]
Devices = Annotated[tuple[Device, ...], msgspec.Meta(max_length=3)]
CapPerDay = Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
# The query parameter a banner's link adds its click id under (``null``: no click id).
ClickIdParam = Annotated[
    str, msgspec.Meta(min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z0-9_.\-]*$")
]


class Banner(msgspec.Struct, frozen=True, kw_only=True):
    """A banner; the last five fields say when and to whom placements serve it.

    ``starts_at``/``ends_at`` bound its schedule (``None``: open), ``countries`` and
    ``devices`` its targeting (empty: everyone), ``cap_per_day`` the serves one visitor
    gets per UTC day (``None``: no cap). The tracking link and the pixel ignore them.
    """

    id: int
    name: str
    image_url: str
    target_url: str
    active: bool
    forward_query: bool
    created_at: datetime
    updated_at: datetime
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    countries: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    cap_per_day: int | None = None
    # The query parameter the link adds a fresh click id under; None: no click id.
    click_id_param: str | None = None


class BannerCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: NameStr
    image_url: UrlStr
    target_url: UrlStr
    active: bool = True
    forward_query: bool = True
    starts_at: AwareTime | None = None
    ends_at: AwareTime | None = None
    countries: Countries | None = None
    devices: Devices | None = None
    cap_per_day: CapPerDay | None = None
    click_id_param: ClickIdParam | None = None


class BannerUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A partial update: fields left out keep their value (``null`` clears a limit)."""

    name: NameStr | msgspec.UnsetType = msgspec.UNSET
    image_url: UrlStr | msgspec.UnsetType = msgspec.UNSET
    target_url: UrlStr | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET
    forward_query: bool | msgspec.UnsetType = msgspec.UNSET
    starts_at: AwareTime | msgspec.UnsetType | None = msgspec.UNSET
    ends_at: AwareTime | msgspec.UnsetType | None = msgspec.UNSET
    countries: Countries | msgspec.UnsetType | None = msgspec.UNSET
    devices: Devices | msgspec.UnsetType | None = msgspec.UNSET
    cap_per_day: CapPerDay | msgspec.UnsetType | None = msgspec.UNSET
    click_id_param: ClickIdParam | msgspec.UnsetType | None = msgspec.UNSET


class ClickFacts(msgspec.Struct, frozen=True, kw_only=True):
    """Where a click came from, derived at ingest (``bannertrack.clicks.facts``).

    ``None`` is "not known" (no referrer, an address without a country, an old click).
    """

    country: str | None = None
    device: str | None = None
    browser: str | None = None
    os: str | None = None
    referrer_host: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None

    def value(self, by: Dimension) -> str | None:
        return getattr(self, _FACT_OF[by])  # type: ignore[no-any-return]


# Rollup values that no client can send: a click without a value, and the fold of
# values beyond the per-day top N (db/breakdown_writes.py).
NONE_VALUE = "(none)"
# The rollup row counting a (banner, day)'s clicks that have no ``AGENT`` row: its
# dimension and its value. "(none)" is not stored: it is these rows' count and the
# ``AGENT`` rows' count less the dimension's stored values (db/breakdown_queries.py).
DAY_TOTAL = "*"
OTHER_VALUE = "(other)"
# The rollup dimension counting device, browser and OS together, one row per distinct
# triple (db/breakdown_writes.py); not a dimension a breakdown is asked by.
AGENT = "agent"
AGENT_PARTS: tuple[Dimension, ...] = ("device", "browser", "os")
AGENT_SEPARATOR = "\x1f"  # between the parts of an ``AGENT`` value
# The field of ClickFacts (and the column of ``clicks``) behind each dimension.
_FACT_OF: dict[Dimension, str] = {d: d for d in DIMENSIONS} | {"referrer": "referrer_host"}


class ClickIn(msgspec.Struct, frozen=True, kw_only=True):
    """What the service keeps of one click request; the raw IP is already gone.

    ``bot`` is decided from the request alone; whether the click is a repeat needs the
    visitor's earlier clicks, so the repository decides that when it stores the click.
    """

    banner_id: int
    occurred_at: datetime
    user_agent: str | None = None
    referrer: str | None = None
    visitor: str | None = None
    bot: bool = False
    bot_reason: str | None = None
    facts: ClickFacts | None = None
    # A click through a placement's signed click URL (clicks/signing.py): the
    # placement its signature vouches for, and the verdict ("valid", "tampered",
    # "expired", "missing"); both None for a plain link.
    placement_id: int | None = None
    signature: str | None = None
    # The random id the link put in the Location (the banner's ``click_id_param``).
    click_id: str | None = None


class RecordedClick(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    banner_id: int
    occurred_at: datetime
    bot: bool = False
    bot_reason: str | None = None
    repeat: bool = False


class SpooledClick(msgspec.Struct, frozen=True, kw_only=True):
    """A click kept on this instance's disk while the database is down (answered 202).

    It is stored in the database, with its id and flags, once the database answers
    (``clicks/spool.py``); until then neither is known.
    """

    banner_id: int
    occurred_at: datetime
    spooled: bool = True


class SpoolStats(msgspec.Struct, frozen=True, kw_only=True):
    """What one process's spool holds, for ``/healthz`` and ``/metrics``."""

    batches: int
    clicks: int
    impressions: int
    oldest_age_s: float
    bytes: int
    max_bytes: int
    spooled_clicks: int  # acknowledged from the spool since start
    replayed_clicks: int  # replayed into the database since start
    rejected_batches: int
    database_down: bool
    last_replay_at: datetime | None  # when batches last left the spool for the database


class ImpressionCount(msgspec.Struct, frozen=True, kw_only=True):
    """Impressions of one banner within one UTC minute (``minute`` is its start)."""

    banner_id: int
    minute: datetime
    count: int
    placement_id: int | None = None  # served by this placement (``GET /p/{id}``)


class ExportedClick(msgspec.Struct, frozen=True, kw_only=True):
    """One raw click as the CSV export writes it (keyset-paged by ``(occurred_at, id)``)."""

    id: int
    occurred_at: datetime
    visitor: str | None
    user_agent: str | None
    referrer: str | None
    bot: bool
    bot_reason: str | None
    repeat: bool


class ClickStats(msgspec.Struct, frozen=True, kw_only=True):
    banner_id: int
    total_clicks: int
    clicks_last_hour: int
    clicks_last_24h: int
    first_click_at: datetime | None
    last_click_at: datetime | None
    # Counts a marketer can trust: total = valid + bot + repeat (a bot is never also
    # counted as a repeat). ctr = valid / impressions, null before the first impression.
    valid_clicks: int = 0
    bot_clicks: int = 0
    repeat_clicks: int = 0
    impressions: int = 0
    ctr: float | None = None
    # Conversions attributed to the banner's clicks; rate = conversions / valid clicks,
    # null before the first valid click; revenue: a decimal string per ISO 4217 currency.
    conversions: int = 0
    conversion_rate: float | None = None
    revenue: Mapping[str, str] = msgspec.field(default_factory=dict)


def conversion_rate(conversions: int, valid_clicks: int) -> float | None:
    return conversions / valid_clicks if valid_clicks > 0 else None


def click_through_rate(valid_clicks: int, impressions: int) -> float | None:
    return valid_clicks / impressions if impressions > 0 else None


def with_impressions(stats: ClickStats, impressions: int) -> ClickStats:
    """``stats`` with a newer impression count (and the ctr that goes with it)."""
    return msgspec.structs.replace(
        stats,
        impressions=impressions,
        ctr=click_through_rate(stats.valid_clicks, impressions),
    )


class BannerWithStats(msgspec.Struct, frozen=True, kw_only=True):
    banner: Banner
    stats: ClickStats


class TopBanner(msgspec.Struct, frozen=True, kw_only=True):
    banner: Banner
    clicks: int


class TopBanners(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    limit: int
    items: tuple[TopBanner, ...]
    incomplete_before: datetime | None = None  # as in RangeTotals (range reads only)


class SeriesPoint(msgspec.Struct, frozen=True, kw_only=True):
    ts: datetime
    clicks: int


class Series(msgspec.Struct, frozen=True, kw_only=True, rename={"from_": "from"}):
    banner_id: int
    from_: datetime
    to: datetime
    interval: Interval
    points: tuple[SeriesPoint, ...]


class BreakdownItem(msgspec.Struct, frozen=True, kw_only=True):
    value: str
    clicks: int  # what the breakdown counts: clicks, or conversions with count=conversions


class Breakdown(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename={"from_": "from"}
):
    """Clicks of one banner (``banner_id`` null: all banners) grouped by one dimension.

    ``items`` are the ``limit`` values with most clicks (ties by value); ``other`` sums the
    rest, including what ingest folded into "(other)". "(none)" counts clicks without a
    value (no referrer, unknown country, clicks from before the dimension existed).
    """

    banner_id: int | None
    by: Dimension
    from_: datetime
    to: datetime
    items: tuple[BreakdownItem, ...]
    other: int
    incomplete_before: datetime | None = None  # as in RangeTotals


class BannerPage(msgspec.Struct, frozen=True, kw_only=True):
    items: tuple[Banner, ...]
    total: int
    offset: int
    limit: int


class RangeTotals(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename={"from_": "from"}
):
    """Counts of one banner (or, with ``banner_id`` null, of all) within a time range.

    Read from the per-minute rollups: every minute that overlaps ``[from, to)`` counts
    whole, so a range that starts or ends inside a minute includes that minute.
    """

    banner_id: int | None
    from_: datetime
    to: datetime
    total_clicks: int
    valid_clicks: int
    bot_clicks: int
    repeat_clicks: int
    impressions: int | None  # null when filtered by a click fact: impressions carry none
    ctr: float | None
    # Conversions credited to the range's clicks, null when filtered by a click fact (the
    # conversion rollups are not kept per fact combination), as impressions.
    conversions: int | None
    conversion_rate: float | None
    revenue: Mapping[str, str] | None
    # Set when the figures are filtered (counted from raw clicks) and the range starts
    # before the oldest raw click retention keeps: clicks before it are missing.
    incomplete_before: datetime | None = None


class TrafficPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One bucket of a traffic series: valid clicks apart from those set apart."""

    ts: datetime
    valid_clicks: int
    bot_clicks: int
    repeat_clicks: int
    impressions: int | None  # null when filtered by a click fact


class TrafficSeries(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename={"from_": "from"}
):
    banner_id: int | None
    from_: datetime
    to: datetime
    interval: Interval
    points: tuple[TrafficPoint, ...]
    incomplete_before: datetime | None = None  # as in RangeTotals


class BusStats(msgspec.Struct, frozen=True, kw_only=True):
    """What the invalidation bus (``caching.bus``) has done: read by the admin API and
    the metrics, which must not import the bus to name it."""

    kind: str
    instance: str
    connected: bool
    published: int
    publish_failures: int
    publishes_skipped: int
    received: int
    applied: int
    own_ignored: int
    malformed: int
    outages: int
    recoveries: int
    down_seconds: float  # of the current outage, 0 when connected
    delay_samples: int
    delay_ms_p50: float | None
    delay_ms_p99: float | None
    delay_ms_max: float | None


class SealedSalt(NamedTuple):
    """One ``visitor_salts`` row's payload: the sealed salt and the sealing key's check."""

    sealed: bytes
    key_check: bytes


# --- placements (bannertrack.placements) -----------------------------------------------

Weight = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Pixels = Annotated[int, msgspec.Meta(ge=1, le=10_000)]


class Placement(msgspec.Struct, frozen=True, kw_only=True):
    """A spot on a page (Revive's zone); ``width``/``height`` are its size in pixels."""

    id: int
    name: str
    width: int | None
    height: int | None
    created_at: datetime
    updated_at: datetime


class PlacementCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: NameStr
    width: Pixels | None = None
    height: Pixels | None = None


class PlacementUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A partial update: fields left out keep their value."""

    name: NameStr | msgspec.UnsetType = msgspec.UNSET
    width: Pixels | msgspec.UnsetType | None = msgspec.UNSET
    height: Pixels | msgspec.UnsetType | None = msgspec.UNSET


class PlacementPage(msgspec.Struct, frozen=True, kw_only=True):
    items: tuple[Placement, ...]
    total: int
    offset: int
    limit: int


class PlacementBanner(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    banner_id: int
    weight: Weight


class PlacementBannersIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole set of a placement's banners; it replaces the one stored."""

    banners: Annotated[tuple[PlacementBanner, ...], msgspec.Meta(max_length=1000)]


class PlacementBanners(msgspec.Struct, frozen=True, kw_only=True):
    placement_id: int
    banners: tuple[PlacementBanner, ...]  # by banner id


class Candidate(msgspec.Struct, frozen=True, kw_only=True):
    banner: Banner
    weight: int


class Candidates(msgspec.Struct, frozen=True, kw_only=True):
    """What a serve of one placement decides from (cached): the placement and its active
    banners with their weights. Schedule, targeting and caps are judged per request."""

    placement: Placement
    banners: tuple[Candidate, ...]


class ServedBanner(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /p/{id}?format=json``: what a site needs to render the chosen banner."""

    banner_id: int
    image_url: str
    click_url: str  # absolute, signed: /c/{banner_id}?p=&ts=&sig=
    width: int | None
    height: int | None


class PlacementBannerStats(msgspec.Struct, frozen=True, kw_only=True):
    banner_id: int
    impressions: int
    clicks: int
    valid_clicks: int
    ctr: float | None
    # As in ClickStats: conversions credited to the placement (its click's), rate =
    # conversions / valid clicks (null without one), revenue per ISO 4217 currency.
    conversions: int = 0
    conversion_rate: float | None = None
    revenue: Mapping[str, str] = msgspec.field(default_factory=dict)


class PlacementStats(msgspec.Struct, frozen=True, kw_only=True, rename={"from_": "from"}):
    """A placement's counts within ``[from, to)`` (whole minutes, as range totals), from
    the ``placement_minutes`` and ``conversion_minutes`` rollups; ``banners`` by banner
    id, those with any count."""

    placement_id: int
    from_: datetime
    to: datetime
    impressions: int
    clicks: int
    valid_clicks: int
    ctr: float | None
    banners: tuple[PlacementBannerStats, ...]
    conversions: int = 0
    conversion_rate: float | None = None
    revenue: Mapping[str, str] = msgspec.field(default_factory=dict)


class ClickFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which clicks a range read counts: one banner and/or values of click facts.

    ``values`` holds (dimension, value) pairs, at most one per dimension, in
    ``DIMENSIONS`` order; the value ``"(none)"`` matches clicks without one. Filtering by
    a click fact reads raw clicks (kept ``retention_days``); by a banner alone, the rollups.
    """

    banner_id: int | None = None
    values: tuple[tuple[Dimension, str], ...] = ()

    @property
    def on_facts(self) -> bool:
        return bool(self.values)

    @property
    def empty(self) -> bool:
        return self.banner_id is None and not self.values


NO_FILTER = ClickFilter()
