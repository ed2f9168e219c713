"""What the service keeps of a visitor instead of their IP address.

The raw address lives only in the request being handled: it is reduced here to a
coarse ``ip_prefix`` (IPv4 /24, IPv6 /48) and to a ``visitor`` key, a keyed BLAKE2b hash
of address and user agent under a random salt of the current UTC day. The salt is never
written anywhere and the salt of a past day is dropped, so once a day is over nobody,
us included, can link its visitor keys to an address or to the next day's keys.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import threading
from collections.abc import Callable, Iterable
from datetime import date

from bannertrack.timeutil import utcnow

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def ip_prefix(address: str | None) -> str | None:
    ip = _parse(address)
    if ip is None:
        return None
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def _parse(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class VisitorHasher:
    """Daily-salted keyed hash of (address, user agent)."""

    def __init__(self, today: Callable[[], date] = lambda: utcnow().date()) -> None:
        self._today = today
        self._lock = threading.Lock()
        self._day: date | None = None
        self._salt = b""

    def _current_salt(self) -> bytes:
        day = self._today()
        if day != self._day:
            with self._lock:
                if day != self._day:
                    # Replacing the only reference destroys yesterday's salt.
                    self._salt = secrets.token_bytes(32)
                    self._day = day
        return self._salt

    def visitor(self, address: str | None, user_agent: str | None) -> str | None:
        ip = _parse(address)
        if ip is None:
            return None
        h = hashlib.blake2b(key=self._current_salt(), digest_size=16)
        h.update(ip.packed)
        h.update(b"\0")
        h.update((user_agent or "").encode("utf-8", "replace"))
        return h.hexdigest()


def parse_networks(spec: str) -> tuple[IPNetwork, ...]:
    """``BANNERTRACK_TRUSTED_PROXIES``: comma-separated addresses or CIDRs."""
    out: list[IPNetwork] = []
    for part in spec.split(","):
        part = part.strip()
        if part:
            out.append(ipaddress.ip_network(part, strict=False))
    return tuple(out)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: Iterable[IPNetwork]
) -> str | None:
    """The client's address: the peer, or, behind trusted proxies, X-Forwarded-For.

    Walks X-Forwarded-For from the right, skipping trusted proxies, and takes the first
    address a trusted proxy vouches for; a client cannot spoof its way past that.
    """
    trusted = tuple(trusted)
    if not trusted or not forwarded_for or not _is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop if _parse(hop) is not None else peer
    return hops[0] if hops else peer


def _is_trusted(address: str | None, trusted: tuple[IPNetwork, ...]) -> bool:
    ip = _parse(address)
    return ip is not None and any(ip in net for net in trusted)
