"""Key figures of a range with their change against the previous period."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from bannertrack.models import RangeTotals

Tone = Literal["valid", "apart", "neutral"]


@dataclass(frozen=True, slots=True)
class Change:
    text: str  # "+12.5 %", "-3.0 %" (a real minus sign), "new", "±0 %"
    direction: Literal["up", "down", "flat"]
    good: bool | None  # colours the change: None when neither way is better


@dataclass(frozen=True, slots=True)
class Figure:
    key: str  # the RangeTotals field, so a test can compare it with the API's
    label: str
    value: float | None
    text: str
    tone: Tone
    change: Change | None
    previous_text: str


def _count(n: int | None) -> str:
    # Impressions are None under a click-fact filter: impressions carry no such facts.
    return "\u2013" if n is None else f"{n:,}"


def _rate(r: float | None) -> str:
    return "\u2013" if r is None else f"{r * 100:.2f} %"


def change(now: float | None, before: float | None, *, more_is_better: bool | None) -> Change:
    if now is None or before is None:
        return Change("\u2013", "flat", None)
    if now == before:
        return Change("±0 %", "flat", None)
    direction: Literal["up", "down"] = "up" if now > before else "down"
    good = None if more_is_better is None else (direction == "up") == more_is_better
    if before == 0:
        return Change("new", direction, good)
    pct = (now - before) / before * 100
    sign = "+" if pct > 0 else "\u2212"
    return Change(f"{sign}{abs(pct):.1f} %", direction, good)


# (field, label, tone, more is better?)
_COUNTS: tuple[tuple[str, str, Tone, bool | None], ...] = (
    ("total_clicks", "Clicks", "neutral", True),
    ("valid_clicks", "Valid clicks", "valid", True),
    ("bot_clicks", "Bot clicks", "apart", False),
    ("repeat_clicks", "Repeat clicks", "apart", None),
    ("impressions", "Impressions", "neutral", True),
)


def key_figures(now: RangeTotals, before: RangeTotals) -> tuple[Figure, ...]:
    figures = [
        Figure(
            key=field,
            label=label,
            value=getattr(now, field),
            text=_count(getattr(now, field)),
            tone=tone,
            change=change(getattr(now, field), getattr(before, field), more_is_better=better),
            previous_text=_count(getattr(before, field)),
        )
        for field, label, tone, better in _COUNTS
    ]
    figures.append(
        Figure(
            key="ctr",
            label="CTR",
            value=now.ctr,
            text=_rate(now.ctr),
            tone="valid",
            change=change(now.ctr, before.ctr, more_is_better=True),
            previous_text=_rate(before.ctr),
        )
    )
    figures += _conversion_figures(now, before)
    return tuple(figures)


def _money(revenue: Mapping[str, str] | None) -> str:
    if not revenue:
        return "\u2013"
    return ", ".join(f"{amount} {currency}" for currency, amount in revenue.items())


def _conversion_figures(now: RangeTotals, before: RangeTotals) -> list[Figure]:
    """Conversions, their rate (per valid click) and revenue, beside clicks and CTR."""
    revenue_change = None
    if (
        now.revenue
        and before.revenue
        and len(now.revenue) == 1
        and set(now.revenue) == set(before.revenue)
    ):
        (currency,) = now.revenue  # one currency both times: its change means something
        revenue_change = change(
            float(Decimal(now.revenue[currency])),
            float(Decimal(before.revenue[currency])),
            more_is_better=True,
        )
    return [
        Figure(
            key="conversions",
            label="Conversions",
            value=now.conversions,
            text=_count(now.conversions),
            tone="valid",
            change=change(now.conversions, before.conversions, more_is_better=True),
            previous_text=_count(before.conversions),
        ),
        Figure(
            key="conversion_rate",
            label="Conversion rate",
            value=now.conversion_rate,
            text=_rate(now.conversion_rate),
            tone="valid",
            change=change(now.conversion_rate, before.conversion_rate, more_is_better=True),
            previous_text=_rate(before.conversion_rate),
        ),
        Figure(
            key="revenue",
            label="Revenue",
            value=None,  # a sum per currency, not one number
            text=_money(now.revenue),
            tone="neutral",
            change=revenue_change or Change("\u2013", "flat", None),
            previous_text=_money(before.revenue),
        ),
    ]
