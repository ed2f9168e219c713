"""The click batch's plan (``db/click_plan.py``), against click-by-click models: the
repeat rule and its SQL rendering, and ``BatchCounts``, which counts a batch per distinct
key for every writer; every rollup must equal the per-click sums.

The model below is the batch counted click by click, as the write path did before: the
fold asked once per click and dimension, in batch order (``model_rows``: the device,
browser and OS triple as one ``agent`` row while the day has room for it, else the
day-total row and a row per part). Random batches (few banners, days
across midnight, repeated facts, a top-N of 3 so the fold admits and refuses values) must
give the same totals, minutes and breakdown rows, with the same values admitted.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone

import msgspec

from bannertrack.db.breakdown_writes import BreakdownFold, Tally
from bannertrack.db.click_plan import (
    BOT,
    REPEAT,
    VALID,
    BatchCounts,
    plan_repeats,
    repeat_sql,
    repeat_step,
    visitor_groups,
    window_sql,
)
from bannertrack.db.sql import micros
from bannertrack.models import (
    AGENT,
    AGENT_PARTS,
    DAY_TOTAL,
    DIMENSIONS,
    NONE_VALUE,
    ClickFacts,
    ClickIn,
)
from bannertrack.timeutil import floor_to

MIDNIGHT = datetime(2026, 11, 30, tzinfo=UTC)


def model_rows(
    fold: BreakdownFold, pair: tuple[int, date], facts: ClickFacts
) -> list[tuple[str, str]]:
    """The rows one click counts in, from ``value_for`` alone (no row for "(none)")."""
    parts = [facts.value(d) for d in AGENT_PARTS]
    agent = "\x1f".join(NONE_VALUE if p is None else p for p in parts)
    usable = len(agent) <= 100 and not any(
        p is not None and (p in ("(none)", "(other)") or "\x1f" in p) for p in parts
    )
    if usable and fold.value_for(pair, AGENT, agent) == agent:
        rows, dimensions = [(AGENT, agent)], [d for d in DIMENSIONS if d not in AGENT_PARTS]
    else:
        rows, dimensions = [(DAY_TOTAL, DAY_TOTAL)], list(DIMENSIONS)
    for dimension in dimensions:
        value = fold.value_for(pair, dimension, facts.value(dimension))
        if value != NONE_VALUE:
            rows.append((dimension, value))
    return rows


def model_breakdowns(fold: BreakdownFold, batch: list[ClickIn], repeats: list[bool]) -> Tally:
    """Click by click, each click's ``model_rows``."""
    tally: Tally = {}
    for click, repeat in zip(batch, repeats, strict=True):
        day = floor_to(click.occurred_at, 60).date()
        valid = 0 if click.bot or repeat else 1
        for dimension, value in model_rows(
            fold, (click.banner_id, day), click.facts or ClickFacts()
        ):
            counts = tally.setdefault((click.banner_id, day, dimension, value), [0, 0])
            counts[0] += 1
            counts[1] += valid
    return tally


def random_batch(rnd: random.Random, n: int) -> tuple[list[ClickIn], list[bool]]:
    facts = [
        None,
        *(
            ClickFacts(
                country=rnd.choice(["DE", "SE", None]),
                device=rnd.choice(["desktop", "mobile", None]),
                browser=rnd.choice(["Firefox", "Chrome", "(none)", "x" * 95, None]),
                os=rnd.choice(["Linux", "iOS", "a\x1fb", None]),
                referrer_host=rnd.choice([f"r{i}.example" for i in range(8)] + [None]),
                utm_source=rnd.choice(["news", "ads", "(other)", None]),
            )
            for _ in range(12)
        ),
    ]
    batch, repeats = [], []
    for _ in range(n):
        at = MIDNIGHT + timedelta(seconds=rnd.uniform(-150, 150))
        if rnd.random() < 0.1:  # the same instant in another zone
            at = at.astimezone(timezone(timedelta(hours=5, minutes=30)))
        bot = rnd.random() < 0.2
        batch.append(
            ClickIn(banner_id=rnd.randint(1, 3), occurred_at=at, bot=bot, facts=rnd.choice(facts))
        )
        repeats.append(not bot and rnd.random() < 0.3)
    return batch, repeats


def test_rollups_equal_the_per_click_sums() -> None:
    rnd = random.Random(7)
    for _ in range(200):
        batch, repeats = random_batch(rnd, rnd.randint(1, 120))
        counts = BatchCounts(batch, repeats)

        totals: dict[int, list[object]] = {}
        minutes: dict[tuple[int, datetime], list[int]] = {}
        for c, r in zip(batch, repeats, strict=True):
            kind = (0, 1, 0) if c.bot else (0, 0, 1) if r else (1, 0, 0)  # valid, bots, repeats
            t = totals.setdefault(c.banner_id, [0, 0, 0, 0, c.occurred_at, c.occurred_at])
            t[0] += 1  # type: ignore[operator]
            for i in range(3):
                t[1 + i] += kind[i]  # type: ignore[operator]
            t[4] = min(t[4], c.occurred_at)  # type: ignore[type-var]
            t[5] = max(t[5], c.occurred_at)  # type: ignore[type-var]
            m = minutes.setdefault((c.banner_id, floor_to(c.occurred_at, 60)), [0, 0, 0, 0])
            m[0] += 1
            for i in range(3):
                m[1 + i] += kind[i]
        assert counts.totals() == [(b, *t) for b, t in sorted(totals.items())]
        assert counts.minutes() == [(b, m, *n) for (b, m), n in sorted(minutes.items())]
        assert counts.pairs() == {(b, m.date()) for b, m in minutes}

        fold, model_fold = BreakdownFold(top_n=3), BreakdownFold(top_n=3)
        assert counts.breakdowns(fold) == model_breakdowns(model_fold, batch, repeats)
        assert fold.admitted() == model_fold.admitted()  # the same values admitted


def test_values_are_admitted_in_the_order_of_their_first_click() -> None:
    fold = BreakdownFold(top_n=2)
    at = MIDNIGHT + timedelta(hours=1)
    hosts = ["a.example", "b.example", "a.example", "c.example", "b.example"]
    batch = [ClickIn(banner_id=1, occurred_at=at, facts=ClickFacts(referrer_host=h)) for h in hosts]
    tally = BatchCounts(batch, [False] * len(batch)).breakdowns(fold)
    day: date = at.date()
    referrers = {v: n for (_, _, d, v), n in tally.items() if d == "referrer"}
    assert referrers == {"a.example": [2, 2], "b.example": [2, 2], "(other)": [1, 1]}
    # No value, no row: "(none)" is the day's clicks less the values, on read.
    assert (1, day, "country", "(none)") not in tally
    assert tally[(1, day, "agent", "(none)\x1f(none)\x1f(none)")] == [5, 5]
    assert (1, day, "*", "*") not in tally


def test_remembered_verdicts_equal_the_fold_asked_afresh() -> None:
    """``BreakdownFold.values`` (the SQLite writer's) against ``value_for`` asked every time,
    in the same order: the same values, the same admitted; and ``learn`` can turn a folded
    value into its own row (another process admitted it), which a remembered verdict must
    not hide."""
    rnd = random.Random(11)
    for _ in range(100):
        fold, model = BreakdownFold(top_n=3, max_pairs=4), BreakdownFold(top_n=3, max_pairs=4)
        fold.max_verdicts = 5
        for _ in range(60):
            pair = (rnd.randint(1, 6), MIDNIGHT.date())
            if rnd.random() < 0.1:
                learned = {"referrer": {f"r{rnd.randint(0, 9)}.example"}}
                fold.learn(pair, learned)
                model.learn(pair, learned)
                continue
            facts = rnd.choice(
                [
                    None,
                    ClickFacts(
                        device=rnd.choice(["desktop", "mobile", None]),
                        browser=f"b{rnd.randint(0, 4)}",
                        referrer_host=f"r{rnd.randint(0, 9)}.example",
                        country=rnd.choice(["DE", None]),
                        utm_source=rnd.choice(["(none)", "news", None]),
                    ),
                ]
            )
            want = tuple(model_rows(model, pair, facts or ClickFacts()))
            assert fold.values(pair, facts) == want
            assert fold.admitted() == model.admitted()


def test_a_learned_value_is_no_longer_folded() -> None:
    fold = BreakdownFold(top_n=1)
    pair = (1, MIDNIGHT.date())
    late = ClickFacts(referrer_host="b.example")
    agent = ("agent", "(none)\x1f(none)\x1f(none)")
    assert fold.values(pair, ClickFacts(referrer_host="a.example")) == (
        agent,
        ("referrer", "a.example"),
    )
    assert fold.values(pair, late) == (agent, ("referrer", "(other)"))
    fold.learn(pair, {"referrer": {"b.example"}})  # written by another process meanwhile
    assert fold.values(pair, late) == (agent, ("referrer", "b.example"))


def test_placements_and_key_numbers_equal_the_per_click_sums() -> None:
    rnd = random.Random(5)
    for _ in range(100):
        batch, repeats = random_batch(rnd, rnd.randint(1, 80))
        batch = [msgspec.structs.replace(c, placement_id=rnd.choice([None, 1, 2])) for c in batch]
        counts = BatchCounts(batch, repeats)
        placed: dict[tuple[int, int, datetime], list[int]] = {}
        for c, r in zip(batch, repeats, strict=True):
            if c.placement_id is not None:
                key = (c.placement_id, c.banner_id, floor_to(c.occurred_at, 60))
                got = placed.setdefault(key, [0, 0])
                got[0] += 1
                got[1] += not c.bot and not r
        assert counts.placements() == [(*k, *n) for k, n in sorted(placed.items())]

        # Each click's number names its key; numbers run in the order of first clicks.
        by_number = {number: key for key, (number, _) in counts.counts.items()}
        assert sorted(by_number) == list(range(len(by_number)))
        assert [by_number[n] for n in dict.fromkeys(counts.numbers)] == list(counts.counts)
        for c, r, number in zip(batch, repeats, counts.numbers, strict=True):
            b, minute, facts, kind, placement = by_number[number]
            assert (b, minute, facts, placement) == (
                c.banner_id,
                floor_to(c.occurred_at, 60),
                c.facts,
                c.placement_id,
            )
            assert kind == (BOT if c.bot else REPEAT if r else VALID)


def test_unknown_repeats_count_every_click_but_bots_as_valid() -> None:
    batch, _ = random_batch(random.Random(3), 50)
    unknown = BatchCounts(batch, None)
    assert unknown.totals() == BatchCounts(batch, [False] * len(batch)).totals()
    assert all(kind != REPEAT for _, _, _, kind, _ in unknown.counts)


def test_the_rule_in_sql_is_repeat_step() -> None:
    """``repeat_sql`` and ``window_sql`` (PostgreSQL's one statement, the visitor upserts)
    give ``repeat_step``'s answers over a grid around the window's edges, in SQLite."""
    window = 1000
    conn = sqlite3.connect(":memory:")
    try:
        for state in (0, 5_000, 10**15):
            for dt in (-2001, -1001, -1000, -999, -1, 0, 1, 999, 1000, 1001, 2500):
                t = state + dt
                sql = f"SELECT {repeat_sql(window, '?1', '?2')}, {window_sql(window, '?1', '?2')}"
                flag, moved = conn.execute(sql, (t, state)).fetchone()
                repeat, new_state = repeat_step(window, state, t)
                assert (bool(flag), moved) == (repeat, new_state), (state, dt)
    finally:
        conn.close()


def model_repeats(
    window: int, batch: list[ClickIn], state: dict[tuple[int, str], int]
) -> list[bool]:
    """Click by click: a repeat when less than the window from the visitor's window."""
    flags = []
    for c in batch:
        key = (c.banner_id, c.visitor or "")
        if c.bot or c.visitor is None:
            flags.append(False)
            continue
        t = micros(c.occurred_at)
        if key in state and abs(t - state[key]) < window:
            flags.append(True)
            continue
        flags.append(False)
        if key not in state or t > state[key]:
            state[key] = t
    return flags


def test_plan_repeats_equals_the_click_by_click_rule() -> None:
    rnd = random.Random(13)
    window = 60 * 10**6
    for _ in range(200):
        state: dict[tuple[int, str], int] = {}
        for _ in range(4):  # batches in a row, each from the state the last one left
            batch = [
                ClickIn(
                    banner_id=rnd.randint(1, 2),
                    occurred_at=MIDNIGHT + timedelta(seconds=rnd.uniform(0, 300)),
                    visitor=rnd.choice(["a", "b", "c", None]),
                    bot=rnd.random() < 0.1,
                )
                for _ in range(rnd.randint(1, 12))
            ]
            groups = visitor_groups(batch)
            before: dict[tuple[int, str], int | None] = {k: state.get(k) for k in groups}
            flags, rows = plan_repeats(window, batch, groups, before)
            assert flags == model_repeats(window, batch, state)
            assert [(b, v) for b, v, *_ in rows] == sorted(groups)
            for b, v, after, prev, first_us in rows:
                key = (b, v)
                assert (after, prev) == (state[key], before[key])
                first = micros(batch[groups[key][0]].occurred_at)
                assert first_us == repeat_step(window, before[key], first)[1]


def test_keys_the_writer_found_gone_are_neither_flagged_nor_written() -> None:
    at = MIDNIGHT
    batch = [ClickIn(banner_id=b, occurred_at=at, visitor="v") for b in (1, 2, 1, 2)]
    groups = visitor_groups(batch)
    flags, rows = plan_repeats(10**6, batch, groups, {(1, "v"): None})
    assert flags == [False, False, True, False]
    assert [(b, v) for b, v, *_ in rows] == [(1, "v")]
