"""Steady tracking-link load from many browser visitors, for the outage tests and bench.

Each request is ``GET /c/{banner}`` as a browser sends it (a browser's agent, one of
``visitors`` per request, so visitor keys and repeat flags vary; ``Accept: text/html``)
with a unique ``Referer`` that the click keeps: every 302 can be found in the database
(``stored_markers``) and counted exactly. The load runs a window at a time (before, during
and after the fault), and each window's answers and latencies are its own. bench/faults.py
drives the same windows from ``wrk`` (``bench/_outage_wrk.py``): a Python client shares the
server's cores, so its latencies are the client's as much as the link's.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

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
class Window:
    """One window of a load: the answers to requests sent in it, by status, and their times."""

    name: str
    seconds: float
    answers: int
    statuses: Counter[int | str]
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def not_302(self) -> int:
        return sum(v for k, v in self.statuses.items() if isinstance(k, int) and k != 302)

    @property
    def errors(self) -> int:
        """Requests that got no answer (connection refused, reset, timed out)."""
        return sum(v for k, v in self.statuses.items() if not isinstance(k, int))


class Load(Protocol):
    acked: set[int]  # markers answered 302
    unanswered: set[int]  # markers sent and never answered: may be stored, or not

    async def window(
        self, name: str, seconds: float, interrupt: asyncio.Event | None = None
    ) -> Window: ...


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
    _errors: list[tuple[float, str]] = field(default_factory=list)  # (at, exception name)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    async def window(
        self, name: str, seconds: float, interrupt: asyncio.Event | None = None
    ) -> Window:
        """Send for ``seconds`` (or until ``interrupt``), then wait for the answers."""
        self.stop.clear()
        started = time.monotonic()
        deadline = started + seconds
        limits = httpx.Limits(max_connections=self.connections)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30, limits=limits) as c:
            watch = asyncio.create_task((interrupt or asyncio.Event()).wait())
            watch.add_done_callback(lambda _: self.stop.set())
            try:
                await asyncio.gather(
                    *(self._sender(c, self._counter, deadline) for _ in range(self.connections))
                )
            finally:
                watch.cancel()
        mine = [(s, st) for at, s, st in self.answers if at >= started]
        latencies = sorted(s for s, _ in mine)
        statuses: Counter[int | str] = Counter(st for _, st in mine)
        statuses.update(Counter(name for at, name in self._errors if at >= started))
        return Window(
            name=name,
            seconds=min(time.monotonic() - started, seconds),
            answers=len(mine),
            statuses=statuses,
            p50_ms=latencies[len(latencies) // 2] * 1000 if latencies else float("nan"),
            p99_ms=p99(latencies) * 1000,
            max_ms=latencies[-1] * 1000 if latencies else float("nan"),
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
                self._errors.append((started, type(exc).__name__))
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


def exactness(load: Load, stored: Counter[int]) -> dict[str, int]:
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
