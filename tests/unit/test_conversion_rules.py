"""The conversion rules without a database: reports, amounts, the window, the click id."""

from __future__ import annotations

import base64
import os
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl, unquote_plus, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bannertrack.clicks import links
from bannertrack.clicks.links import with_click_id
from bannertrack.config import Settings
from bannertrack.conversions.click_ids import WINDOW, click_window, in_window, new_click_id
from bannertrack.conversions.currencies import MINOR_UNITS
from bannertrack.conversions.rules import check_window
from bannertrack.conversions.validation import checked
from bannertrack.conversions.values import ConversionReport, amount_text, revenue_text
from bannertrack.errors import InvalidInputError, OutsideWindowError

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ID = "A" * 22


def report(**kw: object) -> ConversionReport:
    return ConversionReport(**{"click_id": ID, "goal": "sale", **kw})  # type: ignore[arg-type]


def test_a_value_becomes_exact_millionths() -> None:
    got = checked(report(value=Decimal("19.90"), currency="EUR"), NOW)
    assert (got.value_micros, got.currency, got.occurred_at) == (19_900_000, "EUR", NOW)
    assert checked(report(value=Decimal("0.000001"), currency="USD"), NOW).value_micros == 1
    assert checked(report(), NOW).value_micros is None


@pytest.mark.parametrize(
    "value", ["-1", "NaN", "sNaN", "Infinity", "-Infinity", "1E+12", "0.0000001", "1E-7"]
)
def test_values_refused(value: str) -> None:
    with pytest.raises(InvalidInputError, match=r"^value"):
        checked(report(value=Decimal(value), currency="EUR"), NOW)


def test_goal_click_id_currency_and_time_rules() -> None:
    for bad in ({"goal": ""}, {"goal": "x" * 41}, {"goal": "-x"}, {"goal": "a b"}):
        with pytest.raises(InvalidInputError, match=r"^goal"):
            checked(report(**bad), NOW)
    for click_id in ("", "A" * 15, "A" * 65, "A" * 21 + "=", "A" * 21 + "/"):
        with pytest.raises(InvalidInputError, match=r"^click_id"):
            checked(report(click_id=click_id), NOW)
    with pytest.raises(InvalidInputError, match="both or neither"):
        checked(report(currency="EUR"), NOW)
    for currency in ("EURO", "eur", "XAU", "XXX"):
        with pytest.raises(InvalidInputError, match=r"^currency"):
            checked(report(value=Decimal(1), currency=currency), NOW)
    with pytest.raises(InvalidInputError, match=r"^occurred_at"):
        checked(report(occurred_at=NOW + timedelta(minutes=6)), NOW)
    assert checked(report(occurred_at=NOW + timedelta(minutes=4)), NOW).occurred_at > NOW


def test_the_currency_list_holds_the_common_codes_with_their_minor_units() -> None:
    assert len(MINOR_UNITS) > 150
    assert {c: MINOR_UNITS[c] for c in ("EUR", "USD", "JPY", "BHD", "CLF")} == {
        "EUR": 2, "USD": 2, "JPY": 0, "BHD": 3, "CLF": 4,
    }  # fmt: skip
    assert all(re.fullmatch(r"[A-Z]{3}", c) for c in MINOR_UNITS)


def test_amounts_show_the_minor_units_and_never_round() -> None:
    assert amount_text(19_900_000, "EUR") == "19.90"
    assert amount_text(1_500_000_000, "JPY") == "1500"
    assert amount_text(1_500_500_000, "JPY") == "1500.5"
    assert amount_text(5_000, "BHD") == "0.005"
    assert amount_text(1_999_999, "USD") == "1.999999"
    assert amount_text(0, "EUR") == "0.00"
    assert revenue_text([("USD", 1), ("EUR", 100_000), ("", 7), ("EUR", 200_000)]) == {
        "EUR": "0.30",
        "USD": "0.000001",
    }


@given(st.lists(st.decimals(min_value=0, max_value=10**6, places=6), max_size=20))
def test_revenue_is_the_exact_decimal_sum(values: list[Decimal]) -> None:
    micros = [checked(report(value=v, currency="EUR"), NOW).value_micros or 0 for v in values]
    shown = revenue_text([("EUR", m) for m in micros]).get("EUR", "0")
    assert Decimal(shown) == sum(values, Decimal(0))


def test_the_window() -> None:
    click = NOW - timedelta(days=30)
    check_window(click, NOW, timedelta(days=30))
    with pytest.raises(OutsideWindowError, match="30 days"):
        check_window(click - timedelta(seconds=1), NOW, timedelta(days=30))
    with pytest.raises(OutsideWindowError, match="before its click"):
        check_window(NOW, NOW - timedelta(seconds=1), timedelta(days=30))


def test_the_window_never_outlasts_retention() -> None:
    with pytest.raises(ValueError, match="CONVERSION_WINDOW_DAYS"):
        Settings(conversion_window_days=31, retention_days=30)
    assert Settings(conversion_window_days=30, retention_days=30).conversion_window_days == 30


def test_click_ids_are_random_url_safe_and_144_bits() -> None:
    ids = {new_click_id(NOW) for _ in range(1000)}  # one instant: only the random part varies
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{36}", i) for i in ids)
    # The form byte and 64 bits of time fill 12 characters; the 144 random bits the rest.
    assert len({i[:12] for i in ids}) == 1 and len({i[12:] for i in ids}) == 1000
    assert {len(base64.urlsafe_b64decode(i[12:])) for i in ids} == {18}


@given(st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 1)))
def test_a_click_id_holds_a_window_of_10_ms_around_its_click(at: datetime) -> None:
    window = click_window(new_click_id(at))
    assert window is not None
    start, end = window
    assert start <= at <= end and end - start <= WINDOW and in_window(new_click_id(at), at)


def test_ids_share_a_window_for_10_ms_from_its_first_click() -> None:
    later = NOW + timedelta(days=1)
    new_click_id(NOW)  # the window is elsewhere, whatever another test left
    first = new_click_id(later)
    assert click_window(first) == (later, later + WINDOW)
    same = new_click_id(later + WINDOW - timedelta(microseconds=1))
    after = new_click_id(later + WINDOW)
    before = later - timedelta(microseconds=1)
    early = new_click_id(before)  # a clock stepped back
    assert same[:12] == first[:12] and click_window(same) == (later, later + WINDOW)
    assert click_window(after) == (later + WINDOW, later + 2 * WINDOW)
    assert click_window(early) == (before, before + WINDOW)
    assert not in_window(first, later + WINDOW + timedelta(microseconds=1))
    assert not in_window(first, before)


def test_a_microsecond_id_of_the_form_before_is_read_as_a_window_of_one_microsecond() -> None:
    us = (NOW - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    old = base64.urlsafe_b64encode(us.to_bytes(8, "big") + os.urandom(16)).decode()
    assert len(old) == 32 and click_window(old) == (NOW, NOW)
    assert in_window(old, NOW) and not in_window(old, NOW + timedelta(microseconds=1))


@pytest.mark.parametrize(
    "click_id",
    [
        "q3Lx0v6mT1aZk9W2bYc8Rg",  # a legacy id (22 characters): looked up by id alone
        "A" * 31,
        "A" * 33,
        "_" * 32,  # a time past datetime's range
        "é" * 32,
        "A" * 36,  # another form byte (0)
        "_" * 36,  # another form byte (255)
        "AQ" + "!" * 34,  # not base64
        "é" * 36,
    ],
)
def test_ids_not_of_a_timed_form_have_no_time(click_id: str) -> None:
    assert click_window(click_id) is None and in_window(click_id, NOW)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("https://a.example/", "https://a.example/?bt=ID"),
        ("https://a.example/p?x=1", "https://a.example/p?x=1&bt=ID"),
        ("https://a.example/p?bt=old&x=1", "https://a.example/p?x=1&bt=ID"),
        ("https://a.example/p?x=1&bt%5Fx=2&b%74=old", "https://a.example/p?x=1&bt%5Fx=2&bt=ID"),
        ("https://a.example/p?x=1#top", "https://a.example/p?x=1&bt=ID#top"),
        ("https://a.example/p?", "https://a.example/p?bt=ID"),
        ("https://a.example/p#", "https://a.example/p?bt=ID#"),
        ("https://a.example/p?x=1&&y=2", "https://a.example/p?x=1&y=2&bt=ID"),
        ("https://a.example/p?&x=1&", "https://a.example/p?x=1&bt=ID"),
        ("https://a.example/p?a+b=1", "https://a.example/p?a+b=1&bt=ID"),
        ("https://a.example/p?x=1&", "https://a.example/p?x=1&bt=ID"),
    ],
)
def test_with_click_id(location: str, expected: str) -> None:
    assert with_click_id(location, "bt", "ID") == expected
    # Again, from the kept prefix (a location without a fragment) or rewritten anew.
    assert with_click_id(location, "bt", "ID2") == expected.replace("=ID", "=ID2")


def test_kept_location_prefixes_stay_bounded() -> None:
    for i in range(3 * links._MAX_PREFIXES):
        with_click_id(f"https://a.example/p?q={i}", "bt", "ID")
    with_click_id("https://a.example/p?q=" + "x" * links._MAX_PREFIXED, "bt", "ID")
    assert 0 < len(links._PREFIXES) <= links._MAX_PREFIXES
    assert all(len(location) <= links._MAX_PREFIXED for location, _ in links._PREFIXES)


@given(st.lists(st.tuples(st.sampled_from(["bt", "x", "b t", "bt2"]), st.text(max_size=5))))
def test_with_click_id_leaves_exactly_one_id(pairs: list[tuple[str, str]]) -> None:
    from urllib.parse import urlencode

    location = "https://a.example/p?" + urlencode(pairs)
    out = parse_qsl(urlsplit(with_click_id(location, "bt", "ID")).query, keep_blank_values=True)
    assert [v for k, v in out if k == "bt"] == ["ID"]
    assert [p for p in out if p[0] != "bt"] == [p for p in pairs if p[0] != "bt"]


def _with_click_id_by_parts(location: str, param: str, click_id: str) -> str:
    # The rule spelled out part by part (the slow path of with_click_id, for every query).
    base, hash_, fragment = location.partition("#")
    path, _q, query = base.partition("?")
    kept = [p for p in query.split("&") if p and unquote_plus(p.partition("=")[0]) != param]
    kept.append(f"{param}={click_id}")
    return f"{path}?{'&'.join(kept)}{hash_}{fragment}"


_PARTS = ["bt", "bt=1", "b%74=2", "%62t", "bt2=3", "x", "x=1", "a+b=%25", "", "y=#f", "z?=q"]


@given(st.lists(st.sampled_from(_PARTS), max_size=5).map("&".join))
def test_with_click_id_fast_path_keeps_the_rule(query: str) -> None:
    location = f"https://a.example/p?{query}"
    assert with_click_id(location, "bt", "ID") == _with_click_id_by_parts(location, "bt", "ID")


def test_a_forked_worker_draws_other_click_ids_than_its_parent() -> None:
    new_click_id(NOW)  # the parent's pool of random bytes is full now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, as text, then out without pytest's teardown
        os.close(read)
        os.write(write, " ".join(new_click_id(NOW) for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {new_click_id(NOW) for _ in range(100)}
    assert len(child) == 100 and not child & parent
