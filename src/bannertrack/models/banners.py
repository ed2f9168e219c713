"""A banner: what it shows, where its link leads, and when and to whom it is served."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

UrlStr = Annotated[str, msgspec.Meta(min_length=8, max_length=2048)]
NameStr = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# Targeting of placements' serves (placements/rules.py checks what a type cannot).
Device = Literal["mobile", "tablet", "desktop"]
DEVICES: tuple[Device, ...] = ("mobile", "tablet", "desktop")
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


class BannerPage(msgspec.Struct, frozen=True, kw_only=True):
    items: tuple[Banner, ...]
    total: int
    offset: int
    limit: int
