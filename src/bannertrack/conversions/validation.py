"""The rules a conversion report must meet before it reaches the database.

Every refusal is an ``InvalidInputError`` (400) whose message names the field and the
rule, never the value sent: a report arrives with a bearer token and may carry anything,
and a message that echoed input could carry it into logs and answers.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from bannertrack.conversions.currencies import MINOR_UNITS
from bannertrack.conversions.values import MICROS, ConversionIn, ConversionReport
from bannertrack.errors import InvalidInputError
from bannertrack.timeutil import as_utc

# A click id as the link hands them out: 36 characters of the URL-safe base64 alphabet
# (conversions/click_ids.py), 32 or 22 in earlier forms; the range is wider on purpose
# (an id of another length is looked up and not found: 404, not 400).
CLICK_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
GOAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}")
MAX_GOAL = 40
# Amounts up to a trillion with six decimal places: a BIGINT of millionths holds them.
MAX_VALUE = Decimal(10) ** 12
MAX_PLACES = 6
# A report dated later than this ahead of our clock is refused, not stored in the future.
FUTURE_SLACK = timedelta(minutes=5)


def checked(report: ConversionReport, now: datetime) -> ConversionIn:
    """``report`` as the store takes it; ``InvalidInputError`` names what is wrong."""
    if not CLICK_ID.fullmatch(report.click_id):
        raise InvalidInputError(
            "click_id: 16 to 64 characters of A-Z, a-z, 0-9, '-' and '_', as the link adds it"
        )
    if not GOAL.fullmatch(report.goal):
        raise InvalidInputError(
            f"goal: 1 to {MAX_GOAL} characters of letters, digits, '_', '.', ':' and '-', "
            "starting with a letter or digit (e.g. signup, sale)"
        )
    if (report.value is None) != (report.currency is None):
        raise InvalidInputError("value and currency: give both or neither")
    micros = None if report.value is None else _micros(report.value)
    if report.currency is not None and report.currency not in MINOR_UNITS:
        raise InvalidInputError("currency: an ISO 4217 code in capitals, e.g. EUR or USD")
    occurred_at = now if report.occurred_at is None else as_utc(report.occurred_at)
    if occurred_at > now + FUTURE_SLACK:
        raise InvalidInputError("occurred_at: must not lie in the future")
    return ConversionIn(
        click_id=report.click_id,
        goal=report.goal,
        value_micros=micros,
        currency=report.currency,
        occurred_at=occurred_at,
    )


def _micros(value: Decimal) -> int:
    if not value.is_finite():
        raise InvalidInputError("value: must be a finite decimal number")
    if value < 0:
        raise InvalidInputError("value: must not be negative")
    if value >= MAX_VALUE:
        raise InvalidInputError("value: must be less than 1000000000000")
    try:
        scaled = value.scaleb(MAX_PLACES)
        exact = scaled == scaled.to_integral_value()
    except InvalidOperation:
        exact = False
    if not exact:
        raise InvalidInputError(f"value: at most {MAX_PLACES} decimal places")
    return int(scaled)


assert MICROS == 10**MAX_PLACES
