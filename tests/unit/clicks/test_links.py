"""``bannertrack.clicks.links``: stored URLs are Locations, and the Location of a click."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bannertrack.clicks.links import UnusableTargetError, redirect_location, to_uri
from bannertrack.errors import InvalidInputError
from bannertrack.models import Banner

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def banner(target: str, forward_query: bool = True) -> Banner:
    return Banner(
        id=7,
        name="b",
        image_url="https://cdn.example/i.png",
        target_url=target,
        active=True,
        forward_query=forward_query,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize(
    ("target", "query", "expected"),
    [
        ("https://shop.example/p", "", "https://shop.example/p"),
        ("https://shop.example/p", "utm_source=mail", "https://shop.example/p?utm_source=mail"),
        # Existing parameters: kept, and win over the request's of the same name.
        (
            "https://shop.example/p?utm_source=ours&x=1",
            "utm_source=theirs&utm_medium=mail",
            "https://shop.example/p?utm_source=ours&x=1&utm_medium=mail",
        ),
        ("https://shop.example/p?a=1", "a=2", "https://shop.example/p?a=1"),
        # A trailing "?" or "&" is not doubled.
        ("https://shop.example/p?", "utm_source=mail", "https://shop.example/p?utm_source=mail"),
        ("https://shop.example/p?a=1&", "b=2", "https://shop.example/p?a=1&b=2"),
        # A fragment: the target as stored (a query after "#" would land in the fragment).
        ("https://shop.example/p#top", "utm_source=mail", "https://shop.example/p#top"),
        ("https://shop.example/p?a=1#top", "b=2", "https://shop.example/p?a=1#top"),
        # The request's query is decoded and re-encoded: nothing reaches the header raw.
        (
            "https://shop.example/p",
            "next=%0D%0ASet-Cookie:x&q=caf%C3%A9+au+lait",
            "https://shop.example/p?next=%0D%0ASet-Cookie%3Ax&q=caf%C3%A9+au+lait",
        ),
        # Blank values are forwarded as such.
        ("https://shop.example/p", "flag=&x=1", "https://shop.example/p?flag=&x=1"),
        # A legacy IRI target (stored before the rules) is converted on the way out.
        (
            "https://bücher.example/straße?q=ü#é",
            "",
            "https://xn--bcher-kva.example/stra%C3%9Fe?q=%C3%BC#%C3%A9",
        ),
        (
            "https://bücher.example/straße",
            "utm_source=mail",
            "https://xn--bcher-kva.example/stra%C3%9Fe?utm_source=mail",
        ),
    ],
)
def test_redirect_location(target: str, query: str, expected: str) -> None:
    assert redirect_location(banner(target), query) == expected


def test_redirect_location_without_forwarding() -> None:
    b = banner("https://shop.example/p?a=1", forward_query=False)
    assert redirect_location(b, "utm_source=mail&a=2") == "https://shop.example/p?a=1"


@pytest.mark.parametrize(
    "legacy",
    [
        "https://shop.example/p\r\nSet-Cookie: x=1",
        "https://shop.example/\x00",
        "https://a b.example/",
    ],
)
def test_a_stored_target_that_cannot_be_a_location(legacy: str) -> None:
    with pytest.raises(UnusableTargetError) as caught:
        redirect_location(banner(legacy), "utm_source=mail")
    assert caught.value.status == 409 and caught.value.code == "invalid_target"
    assert "\r" not in str(caught.value) and "banner 7" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://shop.example/p?a=1#f", "https://shop.example/p?a=1#f"),
        ("HTTP://Shop.Example:8080/P", "HTTP://Shop.Example:8080/P"),  # ASCII kept as written
        ("https://shop.example/a%20b?x=%2F", "https://shop.example/a%20b?x=%2F"),
        ("https://shop.example/p?", "https://shop.example/p?"),
        ("https://shop.example/p#", "https://shop.example/p#"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        ("https://BÜCHER.example。com/", "https://xn--bcher-kva.example.com/"),
        (
            "https://例え.テスト/パス?キー=値#断片",
            (
                "https://xn--r8jz45g.xn--zckzah/%E3%83%91%E3%82%B9"
                "?%E3%82%AD%E3%83%BC=%E5%80%A4#%E6%96%AD%E7%89%87"
            ),
        ),
        ("https://user:pä@shop.example/", "https://user:p%C3%A4@shop.example/"),
        ("https://[2001:db8::1]:8443/ü", "https://[2001:db8::1]:8443/%C3%BC"),
        ("http://203.0.113.9/", "http://203.0.113.9/"),
        ("https://a_b.example/", "https://a_b.example/"),
    ],
)
def test_to_uri(url: str, expected: str) -> None:
    assert to_uri(url) == expected
    assert to_uri(expected) == expected  # idempotent: a stored URI stays as it is


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://shop.example/p\r\nSet-Cookie: x", "control"),
        ("https://shop.example/p\nx", "control"),
        ("https://shop.example/\x00", "control"),
        ("https://shop.example/\x1b[31m", "control"),
        ("https://shop.example/\x7f", "control"),
        ("https://shop.example/\x85", "control"),
        ("https://shop.example/\t", "control"),
        ("https://shop.example/a b", "spaces"),
        ("https://shop.example/a\u2028b", "spaces"),
        ("https://shop.example/a\u00a0b", "spaces"),
        ("javascript:alert(1)", "absolute http"),
        ("ftp://shop.example/", "absolute http"),
        ("https:///path", "absolute http"),
        ("//shop.example/p", "absolute http"),
        ("https://:80/", "host"),
        ("https://shop.example:99999/", "port"),
        ("https://shop.example:8o/", "port"),
        ("https://[2001:db8::zz]/", "IPv6"),
        ("https://[2001:db8::1/", "valid URL"),
        ("https://shop.example\\@evil.example/", "before '@'"),
        ("https://sh<op.example/", "host"),
        ("https://snow\u2603man.example/", "IDNA"),
        ("https://" + "ü" * 64 + ".example/", "IDNA"),
        ("https://a.example/" + "é" * 700, "longer than 2048"),
    ],
)
def test_to_uri_refuses(url: str, why: str) -> None:
    with pytest.raises(InvalidInputError, match=why):
        to_uri(url, "target_url")
