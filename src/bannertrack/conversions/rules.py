"""The attribution rule: which click a conversion may be credited to.

A conversion counts for a click when it happened no earlier than the click and at most
the window after it (``BANNERTRACK_CONVERSION_WINDOW_DAYS``). The window never outlasts
retention (the settings refuse that), so a click that could still convert is never
deleted: its id lives as long as the window needs.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bannertrack.errors import OutsideWindowError


def check_window(click_at: datetime, occurred_at: datetime, window: timedelta) -> None:
    """Raise ``OutsideWindowError`` (422) unless ``occurred_at`` may credit the click."""
    if occurred_at < click_at:
        raise OutsideWindowError("the conversion is dated before its click")
    if occurred_at - click_at > window:
        days = window.days if window.days * 86400 == window.total_seconds() else window
        raise OutsideWindowError(
            f"the click is older than the conversion window ({days} days) allows"
        )
