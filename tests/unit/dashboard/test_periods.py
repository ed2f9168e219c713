"""The range a dashboard form asks for, and the period it is compared with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bannertrack.dashboard.periods import MAX_CUSTOM_DAYS, resolve_period

NOW = datetime(2026, 11, 30, 9, 15, 42, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 30, tzinfo=UTC)


def test_today_is_since_midnight_against_yesterday_to_the_same_time() -> None:
    p = resolve_period("today", None, None, NOW)
    assert (p.start, p.end, p.interval) == (MIDNIGHT, NOW, "hour")
    assert p.previous == (MIDNIGHT - (NOW - MIDNIGHT), MIDNIGHT)


@pytest.mark.parametrize(("preset", "days"), [("7d", 7), ("30d", 30)])
def test_presets_cover_whole_days_up_to_now(preset: str, days: int) -> None:
    p = resolve_period(preset, "2020-01-01", "2020-01-02", NOW)  # dates are ignored
    assert (p.start, p.end, p.interval) == (MIDNIGHT - timedelta(days=days - 1), NOW, "day")
    assert (p.first_day, p.last_day) == (p.start.date(), NOW.date())
    before_start, before_end = p.previous
    assert before_end == p.start and before_end - before_start == p.end - p.start


def test_unknown_or_missing_preset_is_seven_days() -> None:
    assert resolve_period(None, None, None, NOW).preset == "7d"
    assert resolve_period("<script>", None, None, NOW).preset == "7d"


def test_custom_dates_are_inclusive_and_pick_the_bucket_width() -> None:
    p = resolve_period("custom", "2026-11-01", "2026-11-10", NOW)
    assert p.start == datetime(2026, 11, 1, tzinfo=UTC)
    assert p.end == datetime(2026, 11, 11, tzinfo=UTC)
    assert (p.interval, p.label, p.notice) == ("day", "2026-11-01 \u2013 2026-11-10", None)
    one_day = resolve_period("custom", "2026-11-03", "2026-11-03", NOW)
    assert (one_day.interval, one_day.label) == ("hour", "2026-11-03")
    running = resolve_period("custom", "2026-11-29", "2026-12-05", NOW)
    assert running.end == NOW  # never into the future


@pytest.mark.parametrize(
    ("first", "last", "why"),
    [
        (None, "2026-11-03", "both"),
        ("2026-11-05", "2026-11-03", "after"),
        ("2026-13-01", "2026-11-03", "both"),
        ("2026-12-24", "2026-12-25", "future"),
        ("2024-01-01", "2026-11-03", str(MAX_CUSTOM_DAYS)),
    ],
)
def test_unusable_custom_ranges_fall_back_with_a_notice(
    first: str | None, last: str, why: str
) -> None:
    p = resolve_period("custom", first, last, NOW)
    assert p.preset == "7d" and p.notice is not None and why in p.notice
