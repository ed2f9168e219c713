"""What a banner's schedule and targeting may hold; every refusal is a clear 400.

The wire types (``models.BannerCreate``) already bound the devices, the cap, the shape
of a country code and that every time carries an offset; what a type cannot say is
checked here: country codes ISO 3166-1 assigns, and an end after the start (with an
update, against the stored bound too: ``SqlRepository``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

import msgspec

from bannertrack.errors import InvalidInputError
from bannertrack.models import COUNTRIES, BannerCreate, BannerUpdate

_Data = TypeVar("_Data", BannerCreate, BannerUpdate)


def check_schedule(starts_at: datetime | None, ends_at: datetime | None) -> None:
    for name, value in (("starts_at", starts_at), ("ends_at", ends_at)):
        if value is not None and value.tzinfo is None:
            raise InvalidInputError(f"{name} must carry a time zone offset (RFC 3339)")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InvalidInputError("ends_at must be after starts_at")


def countries(codes: tuple[str, ...]) -> tuple[str, ...]:
    """The codes sorted, each once; one ISO 3166-1 has not assigned is refused (the wire
    type only says "two capital letters")."""
    unknown = sorted({c for c in codes if c not in COUNTRIES})
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:5])
        raise InvalidInputError(f"countries: not ISO 3166-1 alpha-2 codes: {shown}")
    return tuple(sorted(set(codes)))


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
