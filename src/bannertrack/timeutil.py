"""UTC time helpers shared by the repository, the ingest path and the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bannertrack.errors import InvalidInputError
from bannertrack.models import Interval

INTERVAL_SECONDS: dict[Interval, int] = {"minute": 60, "hour": 3600, "day": 86400}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# The range a time from a user may take: a day inside datetime's own, so rounding to a
# bucket and stepping one bucket further (series, export) cannot overflow.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes from users are read as UTC, the only zone the API speaks.

    A time outside ``EARLIEST..LATEST`` (in UTC) is refused with ``InvalidInputError``:
    ``0001-01-01T00:00+01:00`` has no UTC value at all, and one near year 9999 would
    overflow when a series rounds it up to its bucket.
    """
    try:
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise InvalidInputError(
            f"time {value.isoformat()} is out of range: from {EARLIEST:%Y-%m-%d} "
            f"to {LATEST:%Y-%m-%d} (UTC)"
        )
    return utc


def floor_to(value: datetime, seconds: int) -> datetime:
    epoch = int((value - _EPOCH).total_seconds() // seconds) * seconds
    return _EPOCH + timedelta(seconds=epoch)


def ceil_to(value: datetime, seconds: int) -> datetime:
    floored = floor_to(value, seconds)
    return floored if floored == value else floored + timedelta(seconds=seconds)


def from_epoch(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)
