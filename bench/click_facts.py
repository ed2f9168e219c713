"""Per-click cost of the breakdown derivation (clicks.facts.derive), cold and cached.

    .venv/bin/python bench/click_facts.py

Cold: every user agent is new (the LRU is cleared and each agent differs), so each call
parses. Cached: real traffic repeats agents; the verdict is an LRU hit. Also prints the
parts (country lookup, referrer host, utm) and, as the baseline in the same process,
ua-parser without the Rust resolver, to show what ua-parser-rs buys.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bannertrack.clicks.facts import agent_facts, country_of, derive, referrer_host, utm_values

N = 2000
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{}.0.{}.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.{} Mobile/15E148 Safari/604.1"
)
AGENTS = [(CHROME if i % 2 else IPHONE).format(i % 97, i) for i in range(N)]
QUERY = "utm_source=newsletter&utm_medium=email&utm_campaign=black-friday"
REFERRER = "https://www.google.com/search?q=banner"


def per_call(fn: Callable[[int], object], n: int = N) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    derive("8.8.8.8", AGENTS[0], REFERRER, QUERY)  # load rules and tables once
    agent_facts.cache_clear()
    cold = per_call(lambda i: derive(f"81.2.{i % 250}.1", AGENTS[i], REFERRER, QUERY))
    cached = per_call(lambda i: derive(f"81.2.{i % 250}.1", AGENTS[i % 50], REFERRER, QUERY))
    print(f"derive, cold (new agent each call): {cold:8.2f} us/call")
    print(f"derive, cached agent verdict:       {cached:8.2f} us/call")
    print(f"  country_of:    {per_call(lambda i: country_of(f'81.2.{i % 250}.1')):6.2f} us")
    print(f"  referrer_host: {per_call(lambda i: referrer_host(REFERRER)):6.2f} us")
    print(f"  utm_values:    {per_call(lambda i: utm_values(QUERY)):6.2f} us")

    from ua_parser import BasicResolver, Parser, load_builtins

    pure = Parser(BasicResolver(load_builtins()))
    pure.parse(AGENTS[0])
    python_only = per_call(lambda i: pure.parse(AGENTS[i]), 200)
    print(f"baseline: ua-parser without the Rust resolver, cold: {python_only:8.2f} us/call")


if __name__ == "__main__":
    main()
