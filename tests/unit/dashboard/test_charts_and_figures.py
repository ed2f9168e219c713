"""Chart geometry and the key figures' change against the previous period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from bannertrack.dashboard.charts import COMPACT, bar_chart, nice_ceiling
from bannertrack.dashboard.figures import change, key_figures
from bannertrack.models import RangeTotals, TrafficPoint

T0 = datetime(2026, 11, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (10, 10), (11, 20), (1499, 2000)]
)
def test_nice_ceiling(value: int, ceiling: int) -> None:
    assert nice_ceiling(value) == ceiling


@pytest.mark.parametrize(
    ("peak", "ticks"),
    [
        (0, [0, 1, 2]),
        (1, [0, 1, 2]),
        (3, [0, 1, 2, 3]),
        (5, [0, 1, 2, 3, 4, 5]),
        (7, [0, 2, 4, 6, 8]),
        (100, [0, 20, 40, 60, 80, 100]),
        (1499, [0, 500, 1000, 1500]),
    ],
)
def test_small_counts_get_whole_ticks(peak: int, ticks: list[int]) -> None:
    chart = bar_chart((point(0, peak),), "day")
    assert [int(t.label.replace(",", "")) for t in chart.y_ticks] == ticks


def point(day: int, valid: int, bot: int = 0, repeat: int = 0) -> TrafficPoint:
    return TrafficPoint(
        ts=T0 + timedelta(days=day),
        valid_clicks=valid,
        bot_clicks=bot,
        repeat_clicks=repeat,
        impressions=0,
    )


def test_bars_stack_set_apart_on_valid_and_scale_to_the_axis() -> None:
    points = (point(0, 30, 5, 5), point(1, 0), point(2, 80, 20, 0))
    chart = bar_chart(points, "day")
    assert len(chart.bars) == 3 and chart.peak == 100
    tallest = chart.bars[2]
    plot_height = chart.baseline - 12
    assert tallest.valid_height + tallest.apart_height == pytest.approx(plot_height)
    assert tallest.valid_y + tallest.valid_height == pytest.approx(chart.baseline)
    assert tallest.apart_y + tallest.apart_height == pytest.approx(tallest.valid_y)
    assert (chart.bars[1].valid_height, chart.bars[1].apart_height) == (0, 0)
    assert [b.x for b in chart.bars] == sorted(b.x for b in chart.bars)
    assert chart.y_ticks[-1].label == "100"


def test_x_labels_thin_out_on_long_ranges() -> None:
    points = tuple(point(d, d) for d in range(30))
    assert len(bar_chart(points, "day").x_ticks) <= 8
    assert len(bar_chart(points, "day", COMPACT).x_ticks) <= 4
    assert bar_chart((), "day").bars == ()


def totals(valid: int, bot: int, impressions: int) -> RangeTotals:
    return RangeTotals(
        banner_id=None,
        from_=T0,
        to=T0,
        total_clicks=valid + bot,
        valid_clicks=valid,
        bot_clicks=bot,
        repeat_clicks=0,
        impressions=impressions,
        ctr=valid / impressions if impressions else None,
        conversions=0,
        conversion_rate=None,
        revenue={},
    )


def test_changes_say_which_way_is_better() -> None:
    assert change(120, 100, more_is_better=True).text == "+20.0 %"
    assert change(120, 100, more_is_better=True).good is True
    assert change(80, 100, more_is_better=False).good is True
    assert change(80, 100, more_is_better=False).text == "\u221220.0 %"
    assert change(5, 0, more_is_better=True).text == "new"
    assert change(5, 5, more_is_better=True).direction == "flat"
    assert change(None, 0.1, more_is_better=True).text == "\u2013"


def test_key_figures_carry_the_api_fields() -> None:
    figures = {f.key: f for f in key_figures(totals(1234, 10, 50_000), totals(1000, 20, 0))}
    assert list(figures) == [
        "total_clicks",
        "valid_clicks",
        "bot_clicks",
        "repeat_clicks",
        "impressions",
        "ctr",
        "conversions",
        "conversion_rate",
        "revenue",
    ]
    assert figures["valid_clicks"].text == "1,234" and figures["valid_clicks"].value == 1234
    assert figures["bot_clicks"].change is not None and figures["bot_clicks"].change.good is True
    assert figures["ctr"].text == "2.47 %"
    assert figures["ctr"].previous_text == "\u2013"


def test_conversion_figures_sit_beside_clicks_and_ctr() -> None:
    now = msgspec.structs.replace(
        totals(200, 0, 1000), conversions=5, conversion_rate=5 / 200, revenue={"EUR": "99.50"}
    )
    before = msgspec.structs.replace(
        totals(100, 0, 1000), conversions=2, conversion_rate=2 / 100, revenue={"EUR": "39.80"}
    )
    figures = {f.key: f for f in key_figures(now, before)}
    assert figures["conversions"].text == "5" and figures["conversions"].previous_text == "2"
    assert figures["conversion_rate"].text == "2.50 %"
    assert figures["revenue"].text == "99.50 EUR"
    change_of_revenue = figures["revenue"].change
    assert change_of_revenue is not None and change_of_revenue.text == "+150.0 %"
    two = msgspec.structs.replace(now, revenue={"EUR": "1.00", "USD": "2.00"})
    mixed = {f.key: f for f in key_figures(two, before)}["revenue"]
    assert mixed.text == "1.00 EUR, 2.00 USD"
    assert mixed.change is not None and mixed.change.text == "\u2013"
