"""UTC time helpers shared by the repository, the ingest path and the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bannertrack.models import Interval

INTERVAL_SECONDS: dict[Interval, int] = {"minute": 60, "hour": 3600, "day": 86400}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Naive datetimes from users are read as UTC, the only zone the API speaks."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def floor_to(value: datetime, seconds: int) -> datetime:
    epoch = int((value - _EPOCH).total_seconds() // seconds) * seconds
    return _EPOCH + timedelta(seconds=epoch)


def ceil_to(value: datetime, seconds: int) -> datetime:
    floored = floor_to(value, seconds)
    return floored if floored == value else floored + timedelta(seconds=seconds)


def from_epoch(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)
