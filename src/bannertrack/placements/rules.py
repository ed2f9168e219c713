"""What a banner's schedule and targeting may hold; every refusal is a clear 400.

The wire types (``models.BannerCreate``) already bound lengths, devices and the cap;
these rules need more than a type: a time zone on every time, an end after the start,
and country codes that ISO 3166-1 assigns.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

import msgspec

from bannertrack.errors import InvalidInputError
from bannertrack.models import BannerCreate, BannerUpdate

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

_Data = TypeVar("_Data", BannerCreate, BannerUpdate)


def check_schedule(starts_at: datetime | None, ends_at: datetime | None) -> None:
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is not None and value.tzinfo is None:
            raise InvalidInputError(f"{name} must carry a time zone offset (RFC 3339)")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InvalidInputError("ends_at must be after starts_at")


def countries(codes: tuple[str, ...]) -> tuple[str, ...]:
    """The codes in upper case, sorted, each once; an unassigned one is refused."""
    upper = sorted({c.upper() for c in codes})
    unknown = [c for c in upper if c not in COUNTRIES]
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:5])
        raise InvalidInputError(f"countries: not ISO 3166-1 alpha-2 codes: {shown}")
    return tuple(upper)


def checked(data: _Data) -> _Data:
    """``data`` with its targeting normalised; ``InvalidInputError`` for a bad value.

    An update's schedule is checked against the stored bound as well, by the repository
    (it alone has both); here only the bounds the request gives together.
    """
    starts = data.starts_at if isinstance(data.starts_at, datetime) else None
    ends = data.ends_at if isinstance(data.ends_at, datetime) else None
    check_schedule(starts, ends)
    if isinstance(data.countries, tuple):
        return msgspec.structs.replace(data, countries=countries(data.countries))
    return data
