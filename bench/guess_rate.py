"""What brute-forcing a visitor key costs: BLAKE2b guesses per second on one core.

An attacker who holds the day's salt (the key holder with a copy of the database, or an
operator on the day) and a click's user agent can try addresses until one hashes to the
click's visitor key. This measures that loop in CPython on one core, two ways:

- ``service``: ``bannertrack.clicks.privacy.visitor_key`` as the service calls it (a keyed
  BLAKE2b set up per guess);
- ``attacker``: the keyed state set up once and copied per guess (what a careful attacker
  in Python does).

and prints the hours one sweep of the whole IPv4 space (2^32 addresses) takes. A native
or GPU implementation is faster by orders of magnitude; these figures are a floor on the
attacker's speed, not a ceiling. One sweep answers every click with the same user agent
at once (the keys of the day go into one set), so the cost is per distinct user agent.

    .venv/bin/python bench/guess_rate.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import time
from collections.abc import Callable

from bannertrack.clicks.privacy import visitor_key

AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPV4 = 1 << 32


def rate(guess: Callable[[int], object], seconds: float) -> float:
    """Guesses per second over about ``seconds``, in chunks so the clock costs nothing."""
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for i in range(n, n + 20_000):
            guess(i)
        n += 20_000
    return n / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    salt = secrets.token_bytes(32)
    target = visitor_key(salt, bytes(4), AGENT)
    ua = AGENT.encode()

    def service(i: int) -> bool:
        return visitor_key(salt, i.to_bytes(4, "big"), AGENT) == target

    keyed = hashlib.blake2b(key=salt, digest_size=16)

    def attacker(i: int) -> bool:
        h = keyed.copy()
        h.update(i.to_bytes(4, "big") + b"\0" + ua)
        return h.hexdigest() == target

    assert service(0) and attacker(0)  # both compute the service's key
    print(f"{'loop':<10} {'guesses/s':>12} {'hours per IPv4 sweep':>22} {'s per 1M addresses':>20}")
    for name, fn in (("service", service), ("attacker", attacker)):
        r = rate(fn, args.seconds)
        print(f"{name:<10} {r:>12,.0f} {IPV4 / r / 3600:>22.2f} {1e6 / r:>20.2f}")


if __name__ == "__main__":
    main()
