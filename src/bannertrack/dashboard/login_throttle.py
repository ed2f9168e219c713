"""``/login``'s brake on guessing: wrong admin tokens from one client are slowed, then
refused with 429 and ``Retry-After``.

Each client has a leaky bucket of wrong tokens: ``BURST`` may come at once, then one more
every ``LEAK_SECONDS`` (one guess per 30 s, 2,880 a day, against a token of 32 random
bytes or more). A full bucket refuses every attempt, the right token included, so a
guesser learns nothing while refused. A correct sign-in empties the client's bucket.

The client is a visitor key (``clicks.privacy.VisitorHasher``): a keyed hash of the
client's address (behind trusted proxies, the one they vouch for) under a daily salt,
never the address itself. The salt is this process's own random one, not the shared
salt in the database: the buckets are per process anyway, and signing in must work
while the database is down. The user agent is left out, because the client chooses it
and could reset its bucket with each attempt. A request without a usable address shares
one bucket with every other such request.

Memory is bounded: at most ``MAX_CLIENTS`` buckets, the least recently touched dropped
first (an attacker with that many addresses can empty a bucket early; each of its
addresses is still braked). Buckets live in the worker's memory, so with N workers a
client gets up to N times the burst before every worker refuses it.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection

from bannertrack.clicks.privacy import IPNetwork, VisitorHasher, client_address

BURST = 5
LEAK_SECONDS = 30.0
MAX_CLIENTS = 10_000
_STATE_KEY = "login_throttle"
_NO_ADDRESS = "-"


class LoginThrottle:
    def __init__(
        self,
        *,
        burst: int = BURST,
        leak_seconds: float = LEAK_SECONDS,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = burst
        self._leak = leak_seconds
        self._max = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # level, at
        self.hasher = VisitorHasher()  # a private daily salt: no database read

    def __len__(self) -> int:
        return len(self._buckets)

    def keys(self) -> list[str]:
        return list(self._buckets)

    def _level(self, key: str, now: float) -> float:
        found = self._buckets.get(key)
        if found is None:
            return 0.0
        level, at = found
        return max(0.0, level - (now - at) / self._leak)

    def retry_after(self, key: str) -> int | None:
        """Whole seconds until ``key`` may try again, or None when it may now."""
        now = self._clock()
        over = self._level(key, now) - (self._burst - 1)
        if over <= 0:
            return None
        return max(1, math.ceil(over * self._leak))

    def failed(self, key: str) -> None:
        now = self._clock()
        level = self._level(key, now) + 1.0
        self._buckets[key] = (level, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._buckets.pop(key, None)


def throttle_of(connection: ASGIConnection[Any, Any, Any, Any]) -> LoginThrottle:
    """The app's throttle, made on first use (one per app, so per worker)."""
    state = connection.app.state
    found = state.get(_STATE_KEY)
    if not isinstance(found, LoginThrottle):
        found = LoginThrottle()
        state[_STATE_KEY] = found
    return found


async def client_key(
    connection: ASGIConnection[Any, Any, Any, Any],
    throttle: LoginThrottle,
    trusted: tuple[IPNetwork, ...],
) -> str:
    peer = connection.client.host if connection.client else None
    address = client_address(peer, connection.headers.get("x-forwarded-for"), trusted)
    return await throttle.hasher.visitor(address, None) or _NO_ADDRESS
