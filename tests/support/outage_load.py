"""Steady tracking-link load from many browser visitors, for the outage tests and bench.

Each request is ``GET /c/{banner}`` as a browser sends it (a browser's agent, one of
``visitors`` per request, so visitor keys and repeat flags vary; ``Accept: text/html``)
with a unique ``Referer`` that the click keeps: every 302 can be found in the database
(``stored_markers``) and counted exactly. Answers are timed and stamped, so the figures
of the outage window can be taken apart from the rest.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select

from bannertrack.db.engine import create_engine
from bannertrack.db.tables import clicks

MARK = "https://site.example/page/"


def agent(visitor: int) -> str:
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/120.0.{visitor}.0 Safari/537.36"
    )


@dataclass
class LinkLoad:
    base_url: str
    banners: list[int]
    connections: int = 16
    visitors: int = 200
    acked: set[int] = field(default_factory=set)  # markers answered 302
    sent: set[int] = field(default_factory=set)
    statuses: Counter[int | str] = field(default_factory=Counter)
    answers: list[tuple[float, float, int]] = field(default_factory=list)  # (at, s, status)
    unanswered: set[int] = field(default_factory=set)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, seconds: float) -> None:
        counter = itertools.count()
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=self.connections)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30, limits=limits) as c:
            await asyncio.gather(
                *(self._sender(c, counter, deadline) for _ in range(self.connections))
            )

    async def _sender(
        self, client: httpx.AsyncClient, counter: itertools.count[int], deadline: float
    ) -> None:
        while time.monotonic() < deadline and not self.stop.is_set():
            i = next(counter)
            self.sent.add(i)
            headers = {
                "User-Agent": agent(i % self.visitors),
                "Referer": f"{MARK}{i}",
                "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
            }
            started = time.monotonic()
            try:
                r = await client.get(f"/c/{self.banners[i % len(self.banners)]}", headers=headers)
            except httpx.HTTPError as exc:
                self.statuses[type(exc).__name__] += 1
                self.unanswered.add(i)
                await asyncio.sleep(0.05)
                continue
            elapsed = time.monotonic() - started
            self.statuses[r.status_code] += 1
            self.answers.append((started, elapsed, r.status_code))
            if r.status_code == 302:
                self.acked.add(i)
            else:
                await asyncio.sleep(0.05)  # a refused visitor does not hammer

    def window(self, start: float, end: float) -> list[tuple[float, int]]:
        """(seconds, status) of the requests sent between ``start`` and ``end``."""
        return [(s, st) for at, s, st in self.answers if start <= at <= end]


def p99(latencies: list[float]) -> float:
    if not latencies:
        return float("nan")
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def stored_markers(database_url: str) -> Counter[int]:
    """How many times each marker's click is stored."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(clicks.c.referrer).where(clicks.c.referrer.like(f"{MARK}%"))
            )
            return Counter(int(r[0][len(MARK) :]) for r in rows)
    finally:
        await engine.dispose()


def exactness(load: LinkLoad, stored: Counter[int]) -> dict[str, int]:
    """Acknowledged vs stored: lost and doubled must be 0; extra only from unanswered."""
    return {
        "acknowledged": len(load.acked),
        "stored": sum(stored.values()),
        "lost": len(load.acked - set(stored)),
        "doubled": sum(1 for n in stored.values() if n > 1),
        "extra": len(set(stored) - load.acked - load.unanswered),
        # stored, never answered (in flight at a SIGKILL): allowed, never the reverse
        "unanswered_stored": len(set(stored) & load.unanswered),
    }
