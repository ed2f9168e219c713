"""What a conversion is, on the wire and inside: the report, the stored conversion, totals.

Money is a ``Decimal`` on the way in and an integer of millionths (micro-units) inside
and in the database: SQLite has no exact decimal type (its NUMERIC is a binary float), and
sums of integers are exact on both databases. On the way out an amount is a decimal
string per currency, shown with the currency's minor units (``revenue_text``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

import msgspec

from bannertrack.conversions.currencies import MINOR_UNITS

MICROS = 1_000_000


class ConversionReport(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/v1/conversions``: a server says a click's visitor reached a goal.

    ``value`` is a JSON number or a decimal string, decoded exactly (never through a
    binary float); ``value`` and ``currency`` come together or not at all.
    """

    click_id: str
    goal: str
    value: Decimal | None = None
    currency: str | None = None
    occurred_at: datetime | None = None


class ConversionIn(msgspec.Struct, frozen=True, kw_only=True):
    """A checked report (``validation.checked``): what the store writes."""

    click_id: str
    goal: str
    value_micros: int | None
    currency: str | None
    occurred_at: datetime


class Conversion(msgspec.Struct, frozen=True, kw_only=True):
    """A stored conversion, as ``POST /api/v1/conversions`` answers it."""

    id: int
    click_id: str
    goal: str
    banner_id: int
    placement_id: int | None
    value: str | None
    currency: str | None
    occurred_at: datetime


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """The store's answer: the conversion, and whether this report created it (201) or
    found the first report of its (click id, goal) (200, nothing counted)."""

    conversion: Conversion
    created: bool


class GoalTotals(msgspec.Struct, frozen=True, kw_only=True):
    goal: str
    conversions: int
    revenue: Mapping[str, str] = msgspec.field(default_factory=dict)


class ConversionTotals(msgspec.Struct, frozen=True, kw_only=True, rename={"from_": "from"}):
    """Conversions in ``[from, to)`` (whole minutes, as range totals count them) of one
    banner, one placement, both or neither, in all and per goal."""

    banner_id: int | None
    placement_id: int | None
    from_: datetime
    to: datetime
    conversions: int
    revenue: Mapping[str, str]
    goals: tuple[GoalTotals, ...]


class ExportedConversion(msgspec.Struct, frozen=True, kw_only=True):
    """One raw conversion as the CSV export writes it (keyset-paged by (occurred_at, id))."""

    id: int
    occurred_at: datetime
    goal: str
    value: str | None
    currency: str | None
    click_id: str
    placement_id: int | None


def amount_text(micros: int, currency: str) -> str:
    """``micros`` millionths as a decimal string with the currency's minor units, or more
    places when the amount has them (nothing is rounded)."""
    amount = Decimal(micros).scaleb(-6)
    shown = amount.quantize(Decimal(1).scaleb(-MINOR_UNITS.get(currency, 2)))
    if shown != amount:
        shown = amount.normalize()
        if shown == shown.to_integral():  # normalize() writes 1E+1 for 10
            shown = shown.quantize(Decimal(1))
    return f"{shown:f}"


def revenue_text(per_currency: Iterable[tuple[str, int]]) -> dict[str, str]:
    """Revenue per currency as decimal strings, currencies in code order, sums exact."""
    sums: dict[str, int] = {}
    for currency, micros in per_currency:
        if currency:
            sums[currency] = sums.get(currency, 0) + micros
    return {c: amount_text(sums[c], c) for c in sorted(sums)}
