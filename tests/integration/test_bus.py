"""The invalidation bus over real Redis pub/sub and real PostgreSQL LISTEN/NOTIFY.

Two buses in one process stand for two instances: each has its own cache and its own
connections; nothing is shared but the server, as between real hosts.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from tests.support.proxy import TcpProxy
from tests.support.services import PostgresFactory, redis_proxy_target, redis_server
from tests.support.waiting import wait_until

from bannertrack.bootstrap import CACHED_TYPES
from bannertrack.cache import NO_VALUE, MemoryCache, RedisTier, StructCodec, TieredCache
from bannertrack.caching.bus import Bus, PostgresBus, RedisBus, apply_to, asyncpg_connect_args
from bannertrack.caching.cached_repository import CachedRepository
from bannertrack.db.engine import DbTimeouts
from bannertrack.db.repository import SqlRepository
from bannertrack.db.urls import async_url
from bannertrack.errors import DatabaseUnavailableError
from bannertrack.models import BannerCreate, ClickIn

FAST = {"heartbeat": 0.2, "backoff_max": 0.2, "connect_wait": 3.0}
CODEC = StructCodec((*CACHED_TYPES, str))


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


class Node:
    """One instance: an L1 (with the tier when there is one) and its bus."""

    def __init__(self, cache: TieredCache, bus: Bus) -> None:
        self.cache, self.bus = cache, bus
        self.states: list[bool] = []


BusFactory = Callable[[TieredCache, Callable[[bool], None]], Bus]


async def make_node(factory: BusFactory, tier: RedisTier | None = None) -> Node:
    holder: list[Bus] = []
    cache = TieredCache(
        MemoryCache(), tier, is_degraded=lambda: bool(holder) and holder[0].degraded
    )
    states: list[bool] = []

    def on_state(up: bool) -> None:
        states.append(up)
        cache.clear()

    bus = factory(cache, on_state)
    holder.append(bus)
    node = Node(cache, bus)
    node.states = states
    await bus.start()
    return node


async def check_delivery(a: Node, b: Node) -> None:
    assert a.bus.connected and b.bus.connected
    for node in (a, b):
        node.cache.set("banner:1", "v")
        node.cache.set("top_banners:5", "t")
        node.cache.set("click_stats:1", "s")
    a.cache.delete("banner:1")
    await a.bus.publish(["banner:1"], ["top_banners:"])
    await wait_until(lambda: b.cache.get("banner:1") is NO_VALUE)
    assert b.cache.get("top_banners:5") is NO_VALUE
    assert b.cache.get("click_stats:1") == "s"
    assert a.cache.get("click_stats:1") == "s"  # its own message is not applied twice
    await wait_until(lambda: a.bus.own_ignored == 1)
    assert b.bus.applied == 1 and a.bus.applied == 0

    # Delay over many messages: each one applied on the other side before the next.
    for i in range(200):
        await a.bus.publish([f"banner:{i}"], ())
        await wait_until(lambda i=i: b.bus.applied == 2 + i)
    stats = b.bus.stats()
    assert stats.delay_samples == 201
    assert stats.delay_ms_p50 is not None and stats.delay_ms_p50 < 50


async def test_redis_bus_delivers_to_other_instances(redis_url: str) -> None:
    prefix = f"b{uuid.uuid4().hex[:8]}:"
    tiers = [RedisTier.from_url(redis_url, CODEC, prefix=prefix) for _ in range(2)]
    a, b = [
        await make_node(lambda c, s, t=t: RedisBus(t, apply_to(c), s, **FAST), t) for t in tiers
    ]
    try:
        await check_delivery(a, b)
    finally:
        for node in (a, b):
            await node.bus.stop()
        for t in tiers:
            await t.close()


@pytest.fixture
async def pg_connect(postgres: PostgresFactory) -> AsyncIterator[dict[str, object]]:
    url = postgres.create(migrated=False)
    engine = create_async_engine(async_url(url))
    yield asyncpg_connect_args(engine)
    await engine.dispose()
    postgres.drop(url)


async def test_postgres_bus_delivers_to_other_instances(pg_connect: dict[str, object]) -> None:
    a, b = [
        await make_node(lambda c, s: PostgresBus(pg_connect, apply_to(c), s, **FAST))
        for _ in range(2)
    ]
    try:
        await check_delivery(a, b)
    finally:
        for node in (a, b):
            await node.bus.stop()


async def test_redis_outage_degrades_then_recovers_and_clears(redis_url: str) -> None:
    unix, tcp = redis_proxy_target(redis_url)
    proxy = TcpProxy(target_unix=unix, target=tcp)
    proxy.start()
    url = f"redis://127.0.0.1:{proxy.port}/0"
    prefix = f"o{uuid.uuid4().hex[:8]}:"
    tiers = [RedisTier.from_url(url, CODEC, prefix=prefix, retry_after=0.1) for _ in range(2)]
    a, b = [
        await make_node(lambda c, s, t=t: RedisBus(t, apply_to(c), s, **FAST), t) for t in tiers
    ]

    async def load(value: str) -> Callable[[], Awaitable[str]]:
        async def f() -> str:
            return value

        return f

    try:
        assert await a.cache.get_or_load("banner:1", await load("old"), 300) == "old"
        proxy.stop()
        await wait_until(lambda: not a.bus.connected and not b.bus.connected)
        assert a.states == b.states == [True, False]
        assert a.cache.get("banner:1") is NO_VALUE  # dropped on the way down
        # Degraded: loads work (L2 skipped, no error), publishes are skipped, not raised.
        assert await a.cache.get_or_load("banner:1", await load("mid"), 300) == "mid"
        await a.bus.publish(["banner:1"], ())
        assert a.bus.publishes_skipped == 1
        # A write whose L2 invalidation was skipped: the old value is still in L2 ...
        proxy.start()
        await wait_until(lambda: a.bus.connected and b.bus.connected)
        assert a.states == b.states == [True, False, True]
        assert a.bus.recoveries == 1 and b.bus.recoveries == 1
        # ... but the recovery dropped L2 (new epoch) and every L1.
        assert await b.cache.get_or_load("banner:1", await load("new"), 300) == "new"
        assert a.bus.stats().connected and a.bus.stats().outages == 1
    finally:
        for node in (a, b):
            await node.bus.stop()
        for t in tiers:
            await t.close()
        proxy.close()


async def test_a_failed_publish_turns_into_an_outage_and_a_recovery(redis_url: str) -> None:
    prefix = f"f{uuid.uuid4().hex[:8]}:"
    tiers = [RedisTier.from_url(redis_url, CODEC, prefix=prefix) for _ in range(2)]
    a, b = [
        await make_node(lambda c, s, t=t: RedisBus(t, apply_to(c), s, **FAST), t) for t in tiers
    ]
    try:
        b.cache.set("banner:2", "v")
        real = tiers[0].invalidate

        async def broken(*args: object, **kwargs: object) -> int:
            raise ConnectionError("simulated")

        tiers[0].invalidate = broken  # type: ignore[method-assign]
        await a.bus.publish(["banner:2"], ())
        assert a.bus.publish_failures == 1 and not a.bus.connected
        tiers[0].invalidate = real  # type: ignore[method-assign]
        # A reconnects and tells everyone to drop everything: B loses what A could not
        # tell it about.
        await wait_until(lambda: a.bus.connected and b.cache.get("banner:2") is NO_VALUE)
        assert a.bus.recoveries == 1
    finally:
        for node in (a, b):
            await node.bus.stop()
        for t in tiers:
            await t.close()


async def test_a_click_batch_carries_its_notify_to_the_other_instances(
    postgres: PostgresFactory,
) -> None:
    """On PostgreSQL's bus a click batch's invalidation is sent by the batch's own
    statement (one shape or the other): the other instance drops what it cached once the
    batch has committed, and the sender's NOTIFY connection is not used. A batch that
    fails sends nothing."""
    url = postgres.create()
    repos = [SqlRepository.from_url(url, timeouts=DbTimeouts(statement=1.0)) for _ in range(2)]
    connect = asyncpg_connect_args(repos[0].engine)
    nodes = [
        await make_node(lambda c, s: PostgresBus(connect, apply_to(c), s, **FAST)) for _ in range(2)
    ]
    # What a sends over its own NOTIFY connection (a publish): a carried batch sends nothing.
    round_trips: list[tuple[Sequence[str], Sequence[str]]] = []

    async def publish_by_a(keys: Sequence[str], prefixes: Sequence[str]) -> None:
        round_trips.append((keys, prefixes))
        await nodes[0].bus.publish(keys, prefixes)

    a = CachedRepository(repos[0], nodes[0].cache, on_invalidate=publish_by_a, carrier=nodes[0].bus)
    b = CachedRepository(
        repos[1], nodes[1].cache, on_invalidate=nodes[1].bus.publish, carrier=nodes[1].bus
    )
    try:
        banner = await a.create_banner(
            BannerCreate(
                name="b", image_url="https://cdn.example/a.png", target_url="https://a.example/"
            )
        )
        await wait_until(lambda: nodes[1].bus.applied >= 1)  # the create's own publish
        sent_before, applied_before = nodes[0].bus.published, nodes[1].bus.applied
        round_trips.clear()
        at = datetime.now(UTC)
        one = [ClickIn(banner_id=banner.id, occurred_at=at, visitor="v1", user_agent="a")]
        two = [ClickIn(banner_id=banner.id, occurred_at=at, visitor="v2", user_agent="a")] * 2
        for n, batch in enumerate((one, two), start=1):
            stats = await b.click_stats(banner.id)  # cached on b
            assert stats is not None
            total = stats.total_clicks
            await a.record_clicks(batch)
            await wait_until(lambda n=n: nodes[1].bus.applied == applied_before + n)
            fresh = await b.click_stats(banner.id)
            assert fresh is not None and fresh.total_clicks == total + len(batch)
        assert nodes[0].bus.published == sent_before + 2
        assert round_trips == []  # both carried by their batch, none published apart
        assert nodes[0].bus.publish_failures == 0 and nodes[0].bus.connected

        # A batch that fails (the banner's totals row held past the timeout) stores nothing
        # and tells nobody.
        async with repos[0].engine.connect() as other:
            await other.execute(
                text("SELECT 1 FROM banner_totals WHERE banner_id = :b FOR UPDATE"),
                {"b": banner.id},
            )
            with pytest.raises(DatabaseUnavailableError):
                await a.record_clicks(
                    [ClickIn(banner_id=banner.id, occurred_at=at, visitor="v3", user_agent="a")]
                )
            await other.rollback()
        # A barrier, not a pause: one more batch, whose NOTIFY is delivered after anything
        # the failed one could have sent. Once b has it, the failed batch told nobody.
        await a.record_clicks(
            [ClickIn(banner_id=banner.id, occurred_at=at, visitor="v4", user_agent="a")]
        )
        await wait_until(lambda: nodes[1].bus.applied >= applied_before + 3)
        assert nodes[1].bus.applied == applied_before + 3
    finally:
        for node in nodes:
            await node.bus.stop()
        for r in repos:
            await r.close()
        postgres.drop(url)
