"""A recurring fault is one log line per interval, carrying the count held back."""

from __future__ import annotations

import logging

import pytest

from bannertrack.clicks.storable import require_storable, storable
from bannertrack.errors import InvalidInputError
from bannertrack.logs import RateLimitedLog


def test_one_line_per_interval_with_a_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    limited = RateLimitedLog(logging.getLogger("t.faults"), interval=10, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "t.faults"):
        written = [limited.warning("db", "down: %s", i) for i in range(1000)]
        now[0] += 10
        written.append(limited.warning("db", "down: %s", "again"))
        written.append(limited.warning("other", "another fault"))
    assert written.count(True) == 3
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "down: 0",
        "down: again (and 999 more like it since the last such line)",
        "another fault",
    ]


def test_header_values_are_cleaned_and_body_values_refused() -> None:
    assert storable("Mozilla\x00/5.0\ud800") == "Mozilla/5.0"
    assert storable("fine \x01 text") == "fine \x01 text"  # PostgreSQL stores \x01
    assert storable(None) is None
    require_storable(user_agent="ok", referrer=None)
    with pytest.raises(InvalidInputError, match="referrer"):
        require_storable(user_agent="ok", referrer="https://r.example/\x00")
