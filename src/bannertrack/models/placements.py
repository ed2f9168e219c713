"""Placements (``bannertrack.placements``): spots on a page, their banners with
weights, what a serve decides from and answers, and a placement's counts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from bannertrack.models.banners import Banner, NameStr

# What a placement's serve (GET /p/{id}) answers: an iframe-ready page or JSON.
ServeFormat = Literal["html", "json"]

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
