"""The column store of ``db/click_columns.py``: growth, wide codes, dropping rows, and
figures equal to a recount of the same clicks in plain Python."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np

from bannertrack.db.click_columns import BOT, CODED, REPEAT, ClickColumns, counts, us_of
from bannertrack.models import NONE_VALUE, ClickFilter

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _rows(n: int, seed: int = 3) -> list[dict[str, object]]:
    rng = random.Random(seed)
    return [
        {
            "us": us_of(T0) + rng.randrange(3 * 86_400 * 10**6),
            "flags": rng.choice([0, 0, 0, BOT, REPEAT, BOT | REPEAT]),
            "banner": rng.choice([1, 2, 9]),
            **{k: rng.choice(["a", "b", None]) for k in CODED[1:]},
        }
        for _ in range(n)
    ]


def _append(cols: ClickColumns, rows: list[dict[str, object]]) -> None:
    cols.append(
        [r["us"] for r in rows],  # type: ignore[misc]
        [r["flags"] for r in rows],  # type: ignore[misc]
        {k: [r[k] for r in rows] for k in CODED},  # type: ignore[misc]
    )


def test_figures_equal_a_recount_after_growth_and_drops() -> None:
    rows = _rows(5000)
    cols = ClickColumns()
    for at in range(0, 5000, 700):  # several appends, each past the capacity
        _append(cols, rows[at : at + 700])
    assert cols.n == 5000 and len(cols.us) >= 5000
    cols.keep(cols.codes["banner"][: cols.n] != cols.dictionaries["banner"].code[9])
    rows = [r for r in rows if r["banner"] != 9]
    assert cols.n == len(rows)
    f = ClickFilter(values=(("country", "a"), ("os", NONE_VALUE)))
    span = (T0 + timedelta(hours=7), T0 + timedelta(days=2))
    days = (T0, T0 + timedelta(days=2))
    got = counts(cols, f, span, days, width_s=3600, dims=("referrer",), count="valid", banners=True)
    want: Counter[str] = Counter()
    for r in rows:
        if r["country"] != "a" or r["os"] is not None:
            continue
        valid = r["flags"] == 0
        if us_of(days[0]) <= r["us"] < us_of(days[1]) and valid:  # type: ignore[operator]
            want[f"ref:{r['referrer'] or NONE_VALUE}"] += 1
        if us_of(span[0]) <= r["us"] < us_of(span[1]):  # type: ignore[operator]
            want["all"] += 1
            want["valid"] += valid
            want[f"banner:{r['banner']}"] += valid
    assert got.totals[:2] == (want["all"], want["valid"])
    assert got.per_banner == {b: want[f"banner:{b}"] for b in (1, 2)}
    assert got.per_value[0] == {v: want[f"ref:{v}"] for v in ("a", "b", NONE_VALUE)}
    assert sum(v for v, _, _ in got.series.values()) == want["valid"]
    assert all(s % 3600 == 0 for s in got.series)
    nobody = counts(cols, ClickFilter(values=(("country", "ZZ"),)), span)
    assert nobody.totals == (0, 0, 0, 0)


def test_codes_widen_past_65536_values() -> None:
    cols = ClickColumns()
    n = 70_000
    coded: dict[str, list[object]] = {k: [None] * n for k in CODED}
    coded["banner"] = [1] * n
    coded["utm_campaign"] = [f"c{i}" for i in range(n)]
    cols.append([us_of(T0)] * n, [0] * n, coded)  # type: ignore[arg-type]
    assert cols.codes["utm_campaign"].dtype == np.uint32
    assert cols.codes["country"].dtype == np.uint16
    f = ClickFilter(values=(("utm_campaign", "c69999"),))
    assert counts(cols, f, (T0, T0 + timedelta(days=1))).totals == (1, 1, 0, 0)


def test_dropped_rows_take_their_values_with_them() -> None:
    # A stream of distinct campaigns, then all but the newest rows dropped (retention):
    # the dictionary forgets what no row holds, and the codes still name the right values.
    cols = ClickColumns()
    n = 70_000
    coded: dict[str, list[object]] = {k: [None] * n for k in CODED}
    coded["banner"] = [1] * n
    coded["utm_campaign"] = [f"c{i}" for i in range(n)]
    cols.append([us_of(T0) + i for i in range(n)], [0] * n, coded)  # type: ignore[arg-type]
    cols.keep(cols.us[: cols.n] >= us_of(T0) + n - 3)
    assert cols.n == 3
    assert sorted(cols.dictionaries["utm_campaign"].values) == ["c69997", "c69998", "c69999"]  # type: ignore[type-var]
    assert len(cols.dictionaries["country"].values) == 1  # under the spare: left alone
    span = (T0, T0 + timedelta(days=1))
    assert counts(cols, ClickFilter(values=(("utm_campaign", "c69998"),)), span).totals[0] == 1
    assert counts(cols, ClickFilter(values=(("utm_campaign", "c5"),)), span).totals[0] == 0
    cols.append(
        [us_of(T0)], [0], {**{k: [None] for k in CODED}, "banner": [1], "utm_campaign": ["c5"]}
    )
    assert counts(cols, ClickFilter(values=(("utm_campaign", "c5"),)), span).totals[0] == 1
    got = counts(cols, ClickFilter(), span, span, dims=("utm_campaign",), count="all")
    assert got.per_value[0] == {"c69997": 1, "c69998": 1, "c69999": 1, "c5": 1}
