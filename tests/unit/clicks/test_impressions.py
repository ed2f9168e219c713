"""ImpressionBatcher: sums per (banner, minute), one write per flush, failure keeps counts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bannertrack.clicks.impressions import ImpressionBatcher
from bannertrack.clicks.privacy import VisitorHasher
from bannertrack.errors import DatabaseUnavailableError
from bannertrack.models import ImpressionCount

T0 = datetime(2026, 11, 24, 12, 0, 59, tzinfo=UTC)


class Sink:
    def __init__(self) -> None:
        self.writes: list[list[ImpressionCount]] = []
        self.fail = False

    async def record_impressions(self, counts: Sequence[ImpressionCount]) -> None:
        if self.fail:
            raise DatabaseUnavailableError("down")
        self.writes.append(list(counts))


async def test_sums_per_banner_minute_and_writes_once_per_flush() -> None:
    sink, now = Sink(), [T0]
    batcher = ImpressionBatcher(sink, clock=lambda: now[0])  # type: ignore[arg-type]
    for _ in range(5):
        batcher.add(1)
    batcher.add(2)
    now[0] = T0 + timedelta(seconds=2)  # the next minute
    batcher.add(1)
    now[0] = T0  # a clock stepped back: the remembered minute is not reused
    batcher.add(2)
    assert await batcher.flush() == 8 and await batcher.flush() == 0
    minute = T0.replace(second=0)
    assert [(c.banner_id, c.minute, c.count) for c in sink.writes[0]] == [
        (1, minute, 5),
        (1, minute + timedelta(minutes=1), 1),
        (2, minute, 2),
    ]
    assert len(sink.writes) == 1


async def test_a_failed_write_keeps_its_counts_and_pending_is_bounded() -> None:
    sink = Sink()
    batcher = ImpressionBatcher(sink, clock=lambda: T0, max_pending=2)  # type: ignore[arg-type]
    batcher.add(1)
    batcher.add(2)
    batcher.add(3)  # a third (banner, minute): over the bound, counted as dropped
    assert batcher.dropped == 1
    sink.fail = True
    assert await batcher.flush() == 0 and batcher.pending == 2
    sink.fail = False
    batcher.add(1)
    assert await batcher.flush() == 3 and batcher.written == 3


async def test_stop_writes_what_is_pending() -> None:
    sink = Sink()
    batcher = ImpressionBatcher(sink, interval=30)  # type: ignore[arg-type]
    await batcher.start()
    for _ in range(4):
        batcher.add(9)
    await asyncio.wait_for(batcher.stop(), 5)
    assert sum(c.count for w in sink.writes for c in w) == 4


async def test_visitor_keys_change_with_the_day_and_load_the_salt_once_a_day() -> None:
    loads: list[object] = []
    day = [T0.date()]

    async def salt(d: object) -> bytes:
        loads.append(d)
        return bytes(32) if d == T0.date() else b"\x01" * 32

    hasher = VisitorHasher(salt, today=lambda: day[0])
    keys = await asyncio.gather(*(hasher.visitor("203.0.113.7", "ua") for _ in range(50)))
    assert len(set(keys)) == 1 and loads == [T0.date()]
    assert await hasher.visitor("203.0.113.7", "other ua") != keys[0]
    assert await hasher.visitor("::ffff:203.0.113.7", "ua") == keys[0]
    assert await hasher.visitor("not an address", "ua") is None
    day[0] = T0.date() + timedelta(days=1)
    assert await hasher.visitor("203.0.113.7", "ua") != keys[0] and len(loads) == 2
