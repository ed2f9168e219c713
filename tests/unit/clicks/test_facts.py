"""Derivation of the breakdown facts from a click request (country, agent, referrer, utm)."""

from __future__ import annotations

import pytest

from bannertrack.clicks.facts import (
    MAX_VALUE,
    agent_facts,
    country_of,
    derive,
    referrer_host,
    utm_values,
)
from bannertrack.db.breakdown_writes import BreakdownFold
from bannertrack.models import NONE_VALUE, OTHER_VALUE

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
MAC_FIREFOX = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.1; rv:121.0) Gecko/20100101 Firefox/121.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize(
    ("agent", "device", "browser", "os"),
    [
        (IPHONE, "mobile", "Mobile Safari", "iOS"),
        (IPAD, "tablet", "Mobile Safari", "iOS"),
        (ANDROID_PHONE, "mobile", "Chrome Mobile", "Android"),
        (ANDROID_TABLET, "tablet", "Chrome", "Android"),
        (WINDOWS_CHROME, "desktop", "Chrome", "Windows"),
        (MAC_FIREFOX, "desktop", "Firefox", "Mac OS X"),
        (GOOGLEBOT, "bot", "Googlebot", None),
    ],
)
def test_agent_facts(agent: str, device: str, browser: str, os: str | None) -> None:
    facts = agent_facts(agent)
    assert (facts.device, facts.browser, facts.os) == (device, browser, os)


def test_agent_facts_of_nothing_and_gibberish() -> None:
    assert agent_facts(None) == (None, None, None)
    assert agent_facts("") == (None, None, None)
    assert agent_facts("definitely not a browser") == ("other", None, None)


def test_agent_verdicts_are_cached() -> None:
    agent_facts.cache_clear()
    agent_facts(WINDOWS_CHROME)
    agent_facts(WINDOWS_CHROME)
    info = agent_facts.cache_info()
    assert (info.hits, info.misses) == (1, 1)
    assert info.maxsize is not None


@pytest.mark.parametrize(
    ("address", "country"),
    [
        ("8.8.8.8", "US"),
        ("1.0.16.1", "JP"),
        ("::ffff:8.8.8.8", "US"),  # an IPv4 client on a dual-stack socket
        ("2a00:1450:4001::1", "IE"),
        ("10.0.0.1", None),
        ("127.0.0.1", None),
        ("not an address", None),
        ("", None),
        (None, None),
    ],
)
def test_country_of(address: str | None, country: str | None) -> None:
    assert country_of(address) == country


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        ("https://www.Google.com/search?q=secret+terms", "google.com"),
        ("http://news.ycombinator.com/item?id=1", "news.ycombinator.com"),
        ("android-app://com.slack/", "com.slack"),
        ("https://user:pw@example.org:8443/x", "example.org"),
        ("not a url", None),
        ("http://[::1", None),
        ("", None),
        (None, None),
    ],
)
def test_referrer_is_reduced_to_its_host(referrer: str | None, host: str | None) -> None:
    assert referrer_host(referrer) == host


def test_utm_values_are_taken_first_and_bounded() -> None:
    q = "utm_source=news%20letter&utm_medium=email&utm_source=ignored&x=1&utm_campaign=" + (
        "c" * 500
    )
    source, medium, campaign = utm_values(q)
    assert (source, medium) == ("news letter", "email")
    assert campaign == "c" * MAX_VALUE
    assert utm_values("") == (None, None, None)
    assert utm_values("utm_source=&utm_medium=%20") == (None, None, None)
    assert utm_values(None) == (None, None, None)


def test_derive_combines_everything_and_keeps_no_address() -> None:
    facts = derive("8.8.8.8", IPHONE, "https://t.co/abc", "utm_source=twitter&utm_campaign=bf")
    assert facts.country == "US"
    assert (facts.device, facts.os) == ("mobile", "iOS")
    assert facts.referrer_host == "t.co"
    assert (facts.utm_source, facts.utm_medium, facts.utm_campaign) == ("twitter", None, "bf")
    assert "8.8.8.8" not in repr(facts)
    assert facts.value("referrer") == "t.co"


def test_fold_admits_top_n_values_then_folds_into_other() -> None:
    from datetime import date

    fold = BreakdownFold(top_n=3)
    pair = (1, date(2026, 11, 30))
    seen = [fold.value_for(pair, "referrer", f"site{i}.example") for i in range(10)]
    assert seen[:3] == ["site0.example", "site1.example", "site2.example"]
    assert set(seen[3:]) == {OTHER_VALUE}
    assert fold.value_for(pair, "referrer", "site1.example") == "site1.example"
    assert fold.value_for(pair, "referrer", None) == NONE_VALUE
    assert fold.value_for(pair, "referrer", OTHER_VALUE) == OTHER_VALUE
    # Another dimension, day or banner has its own budget.
    assert fold.value_for(pair, "country", "DE") == "DE"
    assert fold.value_for((2, pair[1]), "referrer", "new.example") == "new.example"


def test_fold_memory_is_bounded() -> None:
    from datetime import date, timedelta

    fold = BreakdownFold(top_n=3, max_pairs=5)
    start = date(2026, 1, 1)
    for i in range(50):
        fold.learn((1, start + timedelta(days=i)), {"referrer": {"a"}})
    assert len(fold.admitted()) == 5
    assert fold.missing([(1, start)]) == [(1, start)]
