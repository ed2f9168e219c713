"""What the service keeps of a visitor instead of their IP address.

The raw address lives only in the request being handled: it is reduced here to a
``visitor`` key, a keyed BLAKE2b hash of address and user agent under a random salt of
the current UTC day, and to nothing else. No prefix of the address is kept: with one,
an address was 256 guesses away (docs/counting.md, Privacy).

Every instance must compute the same key for the same visitor, or a visitor who clicks
through two servers would not be recognised as a repeat. So the day's salt is shared
through the database (``visitor_salts``), sealed under a key that is not in the database
(``salt_key.py``): the first instance to need it stores one, every instance reads the
winner, and the salts of past days are deleted in the same transaction. A copy of the
database alone cannot unseal the salt; once the day's row is deleted, nobody, us
included, can link its keys to an address or to the next day's keys. (A deleted row can
linger in database pages or the WAL until they are reused or vacuumed; docs/counting.md
says so.)

A consequence: visitor keys change at 00:00 UTC, so the dedup window never reaches across
midnight.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import secrets
import socket
from collections.abc import Awaitable, Callable, Iterable
from datetime import date

from bannertrack.timeutil import utcnow

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not address:
        return None
    address = address.strip()
    try:
        # The C parser first: it takes exactly the dotted quads ipaddress takes (no octal,
        # no short forms) at a thirtieth of the cost, and every click parses an address
        # two or three times (peer, X-Forwarded-For hops, visitor key).
        return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, address))
    except (OSError, ValueError):  # not a dotted quad; ValueError: a NUL in the text
        pass
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


SaltLoader = Callable[[date], Awaitable[bytes]]


async def _private_salt(_day: date) -> bytes:
    return secrets.token_bytes(32)


class VisitorHasher:
    """Daily-salted keyed hash of (address, user agent).

    ``load_salt(day)`` returns that day's salt, the same in every instance (the sealed
    database one, ``salt_key.sealed_salt_loader``); without it each hasher makes its own random
    salt, which is fine for one process (demo data, tests) and nothing else. The salt is
    held in memory for the day, so the database is asked once a day per process.
    """

    def __init__(
        self,
        load_salt: SaltLoader = _private_salt,
        today: Callable[[], date] = lambda: utcnow().date(),
    ) -> None:
        self._load_salt = load_salt
        self._today = today
        self._lock = asyncio.Lock()
        self._day: date | None = None
        self._salt = b""

    async def _current_salt(self) -> bytes:
        day = self._today()
        if day != self._day:
            async with self._lock:  # one load per day, not one per waiting request
                if day != self._day:
                    # Replacing the only reference drops yesterday's salt from memory.
                    self._salt = await self._load_salt(day)
                    self._day = day
        return self._salt

    async def visitor(self, address: str | None, user_agent: str | None) -> str | None:
        ip = _parse(address)
        if ip is None:
            return None
        return visitor_key(await self._current_salt(), ip.packed, user_agent)


def visitor_key(salt: bytes, packed_ip: bytes, user_agent: str | None) -> str:
    h = hashlib.blake2b(key=salt, digest_size=16)
    h.update(packed_ip)
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
    address a trusted proxy vouches for; a client cannot spoof its way past that. Entries
    may carry a port (``203.0.113.9:8080``, ``[2001:db8::1]:1234``), as some proxies write
    them. An entry that is no address at all (``unknown``, garbage) gives ``None``: the
    proxy's own address would make every such client one visitor, and "no address" only
    costs the visitor key (docs/counting.md: never a repeat).
    """
    if not forwarded_for:
        return peer
    trusted = tuple(trusted)
    if not trusted:
        return peer
    nets = _networks(trusted)
    if not nets.has_peer(peer):
        return peer
    hops = [h for h in (part.strip() for part in forwarded_for.split(",")) if h]
    for hop in reversed(hops):
        try:
            # A plain dotted quad, the usual hop: compared as an integer. inet_pton takes
            # only canonical quads (no leading zeros, four parts), so the hop is already
            # the text ``str`` would write (test_privacy checks against ipaddress).
            number = int.from_bytes(socket.inet_pton(socket.AF_INET, hop), "big")
        except (OSError, ValueError):
            ip = forwarded_address(hop)
            if ip is None:
                return None
            if not nets.contains(ip):
                return str(ip)
            continue
        if not nets.contains_v4(number):
            return hop
    first = forwarded_address(hops[0]) if hops else None
    return str(first) if first is not None else peer


class _Networks:
    """Trusted networks made quick to ask: IPv4 ones as (mask, network) integers, and
    the peers already found to be trusted proxies (at most 64; only proxies, never a
    visitor's address: a peer that is not trusted is parsed again each time)."""

    __slots__ = ("nets", "peers", "v4")

    def __init__(self, nets: tuple[IPNetwork, ...]) -> None:
        self.nets = nets  # held: its id keys ``_NETWORKS`` and is never reused meanwhile
        self.v4 = tuple((int(n.netmask), int(n.network_address)) for n in nets if n.version == 4)
        self.peers: set[str] = set()

    def contains_v4(self, number: int) -> bool:
        return any(number & mask == net for mask, net in self.v4)

    def contains(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip in net for net in self.nets)

    def has_peer(self, address: str | None) -> bool:
        if address is None:
            return False
        if address in self.peers:
            return True
        ip = _parse(address)
        if ip is None or not self.contains(ip):
            return False
        if len(self.peers) >= 64:
            self.peers.clear()
        self.peers.add(address)
        return True


_NETWORKS: dict[int, _Networks] = {}


def _networks(trusted: tuple[IPNetwork, ...]) -> _Networks:
    found = _NETWORKS.get(id(trusted))
    if found is None or found.nets is not trusted:
        if len(_NETWORKS) >= 64:  # tests build many settings; a service has one
            _NETWORKS.clear()
        found = _NETWORKS[id(trusted)] = _Networks(trusted)
    return found


def is_trusted_peer(address: str | None, trusted: tuple[IPNetwork, ...]) -> bool:
    """Whether ``address`` (a peer) lies in one of the ``trusted`` networks; a yes is
    remembered, as a request behind a proxy asks it of the same few addresses all day."""
    return bool(trusted) and _networks(trusted).has_peer(address)


def forwarded_address(hop: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """One X-Forwarded-For entry: an address, optionally with a port, IPv6 in brackets."""
    hop = hop.strip()
    if hop.startswith("["):  # [v6] or [v6]:port
        inside, bracket, rest = hop[1:].partition("]")
        if not bracket or (rest and not _is_port(rest[1:] if rest[0] == ":" else "x")):
            return None
        return _parse(inside)
    host, colon, port = hop.rpartition(":")
    if colon and "." in host and ":" not in host and _is_port(port):  # IPv4:port
        return _parse(host)
    return _parse(hop)  # a bare address (IPv6 unbracketed has colons of its own)


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and 0 < len(text) <= 5 and int(text) <= 65535


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A plain IPv4 or IPv6 address (no port, no brackets), or None."""
    return _parse(text)
