"""The rules of a time-range series, apart from how it is read.

A series has one point per bucket from ``from`` rounded down to the bucket holding
``to``, empty buckets included, so its size follows from the range alone and an absurd
range (a minute series over ten years) is refused before any query runs.
"""

from __future__ import annotations

from datetime import datetime

from bannertrack.errors import InvalidInputError
from bannertrack.models import Interval
from bannertrack.timeutil import INTERVAL_SECONDS, floor_to

MAX_SERIES_POINTS = 10_000
"""The most points one series may have: about a week of minutes, a year of hours."""


def series_points(start: datetime, end: datetime, interval: Interval) -> int:
    """How many points the series from ``start`` to ``end`` has."""
    width = INTERVAL_SECONDS[interval]
    return int((floor_to(end, width) - floor_to(start, width)).total_seconds()) // width + 1


def check_series_range(start: datetime, end: datetime, interval: Interval) -> None:
    """Refuse a reversed range or one of more than ``MAX_SERIES_POINTS`` points."""
    if start > end:
        raise InvalidInputError("'from' must not be after 'to'")
    if series_points(start, end, interval) > MAX_SERIES_POINTS:
        raise InvalidInputError(
            f"range too long for interval {interval!r}: at most {MAX_SERIES_POINTS} points"
        )
