"""``privacy.client_address``: who the client is, behind trusted proxies or not."""

from __future__ import annotations

import pytest

from bannertrack.clicks.privacy import (
    client_address,
    forwarded_address,
    parse_address,
    parse_networks,
)

PROXIES = parse_networks("10.0.0.0/8, 2001:db8:ffff::/48")


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        # No X-Forwarded-For, or an untrusted peer: the peer itself, whatever it claims.
        ("203.0.113.5", None, "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1, 10.0.0.2", "203.0.113.5"),
        # A trusted peer: the right-most untrusted entry.
        ("10.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.1", "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
        # Entries with a port are addresses, not garbage (the two forms).
        ("10.0.0.1", "203.0.113.9:8080", "203.0.113.9"),
        ("10.0.0.1", "[2001:db8::1]:1234", "2001:db8::1"),
        ("10.0.0.1", "[2001:db8::1]", "2001:db8::1"),
        ("10.0.0.1", "6.6.6.6, 203.0.113.9:8080, 10.0.0.2:443", "203.0.113.9"),
        ("10.0.0.1", "198.51.100.1, [2001:db8:ffff::7]:80", "198.51.100.1"),
        # IPv6 without brackets (its colons are no port), and IPv4-mapped IPv6.
        ("10.0.0.1", "2001:db8::1", "2001:db8::1"),
        ("10.0.0.1", "::ffff:198.51.100.1", "198.51.100.1"),
        ("2001:db8:ffff::1", "2001:DB8:0:0::2", "2001:db8::2"),
        # Garbage where the client should be: unknown, never the proxy's own address.
        ("10.0.0.1", "unknown", None),
        ("10.0.0.1", "198.51.100.1:99999", None),
        ("10.0.0.1", "198.51.100.1:", None),
        ("10.0.0.1", "[2001:db8::1]:x", None),
        ("10.0.0.1", "[2001:db8::1", None),
        ("10.0.0.1", "not an address, 10.0.0.2", None),
        ("10.0.0.1", "198.51.100.1:80:80", None),
        # Arabic-Indic digits are no address.
        ("10.0.0.1", "\u0661\u0669\u0668.\u0665\u0661.\u0661\u0660\u0660.\u0661", None),
        # A spoofed entry left of garbage does not win.
        ("10.0.0.1", "6.6.6.6, garbage", None),
        # Every hop trusted: the left-most one; an empty header: the peer.
        ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),
        ("10.0.0.1", " , ", "10.0.0.1"),
    ],
)
def test_client_address(peer: str, xff: str | None, expected: str | None) -> None:
    assert client_address(peer, xff, PROXIES) == expected


def test_no_trusted_proxies_means_the_peer() -> None:
    assert client_address("10.0.0.1", "198.51.100.1", ()) == "10.0.0.1"
    assert client_address(None, "198.51.100.1", PROXIES) is None


@pytest.mark.parametrize(
    ("hop", "expected"),
    [
        ("203.0.113.9", "203.0.113.9"),
        (" 203.0.113.9:1 ", "203.0.113.9"),
        ("203.0.113.9:65535", "203.0.113.9"),
        ("203.0.113.9:65536", None),
        ("203.0.113.9:+80", None),
        ("[::1]:0080", "::1"),
        ("[::1]80", None),
        ("", None),
    ],
)
def test_forwarded_address(hop: str, expected: str | None) -> None:
    got = forwarded_address(hop)
    assert (None if got is None else str(got)) == expected


def test_the_fast_ipv4_parse_agrees_with_ipaddress() -> None:
    """``parse_address`` tries inet_pton first: it must accept and refuse what ipaddress does."""
    import ipaddress
    import random

    def reference(text: str) -> object:
        try:
            ip = ipaddress.ip_address(text.strip())
        except ValueError:
            return None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        return ip

    fixed = ["1.2.3.4", "01.2.3.4", "1.2.3", "1.2.3.4.5", "256.1.1.1", " 1.2.3.4 ", "1.2.3.04"]
    fixed += ["0x7f.0.0.1", "127.1", "4294967295", "1.2.3.4\x00", "::ffff:1.2.3.4", "\u0661.2.3.4"]
    rng = random.Random(20261130)
    parts = ["0", "00", "1", "01", "255", "256", "999", "1a", " 1", "", "\x00", "\u0663", "-1"]
    generated = [".".join(rng.choices(parts, k=rng.choice([3, 4, 5]))) for _ in range(5000)]
    for text in fixed + generated:
        assert parse_address(text) == reference(text), repr(text)


def _reference_client_address(peer: str | None, xff: str | None, trusted: tuple) -> str | None:  # type: ignore[type-arg]
    """The walk written plainly with ``ipaddress`` (what ``client_address`` did before its
    IPv4 shortcut and its memory of proxy peers)."""
    if not trusted or not xff:
        return peer
    ip = parse_address(peer) if peer else None
    if ip is None or not any(ip in net for net in trusted):
        return peer
    hops = [h.strip() for h in xff.split(",") if h.strip()]
    for hop in reversed(hops):
        got = forwarded_address(hop)
        if got is None or not any(got in net for net in trusted):
            return None if got is None else str(got)
    first = forwarded_address(hops[0]) if hops else None
    return str(first) if first is not None else peer


def test_client_address_agrees_with_the_plain_walk() -> None:
    import random

    rng = random.Random(20261206)
    hops = ["10.0.0.2", "10.1.2.3", "198.51.100.1", "01.2.3.4", "1.2.3", "10.0.0.2:80"]
    hops += ["198.51.100.1:8080", "[2001:db8::1]:1", "2001:db8:ffff::9", "::ffff:10.0.0.9"]
    hops += ["unknown", "", " 203.0.113.7 ", "256.1.1.1", "1.2.3.4\x00", "0.0.0.0"]
    peers = ["10.0.0.1", "10.255.0.1", "203.0.113.5", "2001:db8:ffff::1", "garbage", None]
    for _ in range(3000):
        xff = ",".join(rng.choices(hops, k=rng.choice([1, 1, 2, 3])))
        peer = rng.choice(peers)
        expected = _reference_client_address(peer, xff, PROXIES)
        assert client_address(peer, xff, PROXIES) == expected, (peer, xff)


def test_only_proxy_peers_are_remembered() -> None:
    """The memory that makes the trusted-peer check quick holds proxies, never a
    visitor's address (the module's promise: an address lives only in its request)."""
    from bannertrack.clicks import privacy

    nets = parse_networks("10.0.0.0/8")
    assert client_address("203.0.113.5", "198.51.100.1", nets) == "203.0.113.5"
    assert client_address("10.0.0.1", "198.51.100.1", nets) == "198.51.100.1"
    remembered = privacy._NETWORKS[id(nets)].peers
    assert remembered == {"10.0.0.1"}
