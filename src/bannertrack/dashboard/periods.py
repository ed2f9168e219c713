"""The range a dashboard page shows, from its GET form: today, 7 d, 30 d or custom dates.

Everything is UTC, like the API. A range ends "now" unless custom dates end earlier, and
the previous period is the equally long stretch right before it, so "+12 %" compares
like with like (today so far against yesterday up to the same time of day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from bannertrack.models import Interval

PRESETS = {"today": "Today", "7d": "Last 7 days", "30d": "Last 30 days", "custom": "Custom"}
DEFAULT_PRESET = "7d"
MAX_CUSTOM_DAYS = 400  # day buckets: a chart of at most this many bars


@dataclass(frozen=True, slots=True)
class Period:
    preset: str
    start: datetime
    end: datetime
    interval: Interval
    notice: str | None = None  # why the form's dates were not taken as given

    @property
    def previous(self) -> tuple[datetime, datetime]:
        return self.start - (self.end - self.start), self.start

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        """The last day the range touches (its end is exclusive)."""
        return (self.end - timedelta(microseconds=1)).date()

    @property
    def label(self) -> str:
        if self.preset != "custom":
            return PRESETS[self.preset]
        if self.first_day == self.last_day:
            return self.first_day.isoformat()
        return f"{self.first_day.isoformat()} \u2013 {self.last_day.isoformat()}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def resolve_period(
    preset: str | None, from_day: str | None, to_day: str | None, now: datetime
) -> Period:
    """The range the form asks for; an unusable custom range falls back to 7 days."""
    preset = preset if preset in PRESETS else DEFAULT_PRESET
    today = _midnight(now.date())
    if preset == "today":
        return Period("today", today, now, "hour")
    if preset in ("7d", "30d"):
        days = 7 if preset == "7d" else 30
        return Period(preset, today - timedelta(days=days - 1), now, "day")
    first, last = _parse_day(from_day), _parse_day(to_day)
    notice = None
    if first is None or last is None:
        notice = "Pick both a start and an end date."
    elif first > last:
        notice = "The start date is after the end date."
    elif first > now.date():
        notice = "The range starts in the future."
    elif (last - first).days + 1 > MAX_CUSTOM_DAYS:
        notice = f"A custom range spans at most {MAX_CUSTOM_DAYS} days."
    if notice is not None or first is None or last is None:
        fallback = resolve_period(DEFAULT_PRESET, None, None, now)
        return Period(fallback.preset, fallback.start, fallback.end, "day", notice)
    start, end = _midnight(first), min(_midnight(last) + timedelta(days=1), now)
    interval: Interval = "hour" if end - start <= timedelta(days=2) else "day"
    return Period("custom", start, end, interval)
