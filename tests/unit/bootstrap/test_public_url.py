"""``PublicUrls``: the base of every absolute URL, from the setting, the request, or a
trusted proxy's X-Forwarded-Proto/-Host, and nothing an untrusted client sends."""

from __future__ import annotations

from typing import Any

import pytest

from bannertrack.bootstrap.public_url import PublicUrls, check_public_url
from bannertrack.clicks.privacy import parse_networks
from bannertrack.config import load_settings
from bannertrack.errors import InvalidInputError

PROXIES = parse_networks("10.0.0.0/8, ::1")


def scope(
    peer: str = "203.0.113.5",
    scheme: str = "http",
    server: tuple[str, int | None] | None = ("127.0.0.1", 8080),
    **headers: str,
) -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": scheme,
        "client": (peer, 40000),
        "server": server,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


FORWARDED = {"host": "app:8080", "x_forwarded_proto": "https", "x_forwarded_host": "ads.example"}


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # A direct request: its own scheme and Host.
        ("203.0.113.5", {"host": "ads.example:8080"}, "http://ads.example:8080"),
        # The forwarded headers from an untrusted peer are ignored, whatever they claim.
        ("203.0.113.5", FORWARDED, "http://app:8080"),
        # From a trusted proxy they are the public scheme and host.
        ("10.1.2.3", FORWARDED, "https://ads.example"),
        ("::1", FORWARDED, "https://ads.example"),
        ("::ffff:10.0.0.1", FORWARDED, "https://ads.example"),
        # Only the proto: the Host header stays (nginx's `proxy_set_header Host $host`).
        ("10.0.0.1", {"host": "ads.example", "x_forwarded_proto": "https"}, "https://ads.example"),
        # Several proxies appended theirs: the first entry is the one nearest the client.
        (
            "10.0.0.1",
            {"host": "h", "x_forwarded_proto": "https, http", "x_forwarded_host": "a.example, h"},
            "https://a.example",
        ),
        # Values that are no scheme or no host are not written into a URL.
        ("10.0.0.1", {"host": "h.example", "x_forwarded_proto": "javascript"}, "http://h.example"),
        (
            "10.0.0.1",
            {"host": "h.example", "x_forwarded_host": 'evil"><script>'},
            "http://h.example",
        ),
        ("203.0.113.5", {"host": "a b/c"}, "http://127.0.0.1:8080"),
        ("203.0.113.5", {"host": "user@evil.example"}, "http://127.0.0.1:8080"),
        ("203.0.113.5", {"host": "[2001:db8::1]:8443"}, "http://[2001:db8::1]:8443"),
        # No Host at all (HTTP/1.0): the server's own address.
        ("203.0.113.5", {}, "http://127.0.0.1:8080"),
    ],
)
def test_the_base_url(peer: str, headers: dict[str, str], expected: str) -> None:
    assert PublicUrls("", PROXIES).base(scope(peer, **headers)) == expected


def test_one_instance_answers_every_case_in_turn() -> None:
    """The base is remembered per request facts: the same headers from an untrusted
    client after a trusted proxy (and the other way round) still get their own answer."""
    urls = PublicUrls("", PROXIES)
    cases = [
        ("10.1.2.3", FORWARDED, "https://ads.example"),
        ("203.0.113.5", FORWARDED, "http://app:8080"),
        ("203.0.113.5", {}, "http://127.0.0.1:8080"),
        ("203.0.113.5", {"host": "a b/c"}, "http://127.0.0.1:8080"),
    ]
    for _ in range(2):
        for peer, headers, expected in cases:
            assert urls.base(scope(peer, **headers)) == expected
    assert urls.base(scope(server=("10.0.0.9", 9000))) == "http://10.0.0.9:9000"


def test_without_trusted_proxies_no_forwarded_header_counts() -> None:
    assert PublicUrls("", ()).base(scope("10.0.0.1", **FORWARDED)) == "http://app:8080"


def test_the_setting_wins_over_every_header() -> None:
    urls = PublicUrls("https://ads.example.com", PROXIES)
    assert urls.url(scope("10.0.0.1", **FORWARDED), "/c/7") == "https://ads.example.com/c/7"
    assert urls.url(scope(), "/i/7") == "https://ads.example.com/i/7"


def test_the_server_address_without_a_default_port() -> None:
    urls = PublicUrls("", ())
    assert urls.base(scope(scheme="https", server=("10.0.0.9", 443))) == "https://10.0.0.9"
    assert urls.base(scope(server=("::1", 8080))) == "http://[::1]:8080"
    assert urls.base(scope(server=None)) == "http://localhost"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("", ""),
        ("https://Ads.Example.com", "https://ads.example.com"),
        ("https://ads.example.com/", "https://ads.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_the_setting_is_kept_in_one_form(given: str, kept: str) -> None:
    assert check_public_url(given) == kept
    assert load_settings(public_url=given).public_url == kept


@pytest.mark.parametrize(
    "given",
    [
        "ads.example.com",
        "ftp://ads.example.com",
        "https://ads.example.com/track",
        "https://ads.example.com?x=1",
        "https://ads.example.com#top",
        "https://user:pw@ads.example.com",
        "https://",
    ],
)
def test_a_refused_setting_is_named(given: str) -> None:
    with pytest.raises(InvalidInputError, match="BANNERTRACK_PUBLIC_URL"):
        load_settings(public_url=given)
