"""``RedisTier``: the shared second tier, built so that it cannot bring stale data back.

Layout in Redis, every name under ``prefix`` (default ``bt:``)::

    {p}epoch                   a random token; replacing it drops the whole tier at once
    {p}gen:{namespace}         a counter; INCR drops every key of one namespace at once
    {p}v:{epoch}:{gen}:{key}   a value (msgspec envelope, PX = its TTL) or a tombstone

Why this shape:

- Prefix invalidation (``top_banners:*``) is one INCR, not a SCAN: the generation is part
  of every key's name, so the old keys become unreachable and expire on their own.
- A load that missed L2, read the database, and writes its result back *after* a write
  invalidated the key would poison L2 for a whole TTL. So every miss hands out a token
  (the epoch, the generation and what the key held: nothing, or a tombstone) and the
  write-back is a compare-and-set in Lua: it stores only if none of the three changed.
  Invalidating a single key writes a fresh tombstone (not DEL) for exactly that reason.
- Invalidation and the bus announcement run in one script: other instances hear about a
  write only once L2 no longer holds what it replaced.

Scripts compute key names inside Lua, which is fine on a single Redis (or a replica set)
but not on Redis Cluster.

Errors (only here does redis-py appear)::

    RedisError, OSError, asyncio.TimeoutError  ->  TierUnavailable (also on the bus's
    subscription, ``_pubsub.py``)

After one, the tier stays ``available == False`` for ``retry_after`` seconds, so a dead
Redis costs a request at most one short timeout, not one per key.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bannertrack.cache._protocol import NO_VALUE
from bannertrack.cache._pubsub import TierSubscription
from bannertrack.cache._pubsub import TierUnavailable as TierUnavailable  # re-exported
from bannertrack.cache._stats import namespace_of

_TOMBSTONE = b"\x00"  # first byte of a tombstone; an envelope starts with a msgpack array

_FETCH = """
local p = ARGV[1]
local e = redis.call('GET', p .. 'epoch') or '0'
local g = redis.call('GET', p .. 'gen:' .. ARGV[3]) or '0'
local k = p .. 'v:' .. e .. ':' .. g .. ':' .. ARGV[2]
local v = redis.call('GET', k)
if not v then return {e, g, '', 0} end
return {e, g, v, redis.call('PTTL', k)}
"""

_STORE = """
local p = ARGV[1]
local e = redis.call('GET', p .. 'epoch') or '0'
local g = redis.call('GET', p .. 'gen:' .. ARGV[3]) or '0'
if e ~= ARGV[4] or g ~= ARGV[5] then return 0 end
local k = p .. 'v:' .. e .. ':' .. g .. ':' .. ARGV[2]
if (redis.call('GET', k) or '') ~= ARGV[6] then return 0 end
redis.call('SET', k, ARGV[7], 'PX', ARGV[8])
return 1
"""

# ARGV: prefix, tombstone TTL (ms), tombstone, new epoch or '', channel, message or '',
# 2n, then n pairs (namespace, key), then the namespaces whose generation moves on.
_INVALIDATE = """
local p = ARGV[1]
if ARGV[4] ~= '' then redis.call('SET', p .. 'epoch', ARGV[4]) end
local e = redis.call('GET', p .. 'epoch') or '0'
local n = tonumber(ARGV[7])
for i = 8, 7 + n, 2 do
  local g = redis.call('GET', p .. 'gen:' .. ARGV[i]) or '0'
  redis.call('SET', p .. 'v:' .. e .. ':' .. g .. ':' .. ARGV[i + 1], ARGV[3], 'PX', ARGV[2])
end
for i = 8 + n, #ARGV do redis.call('INCR', p .. 'gen:' .. ARGV[i]) end
if ARGV[6] ~= '' then return redis.call('PUBLISH', ARGV[5], ARGV[6]) end
return 0
"""


class StructCodec:
    """msgspec/msgpack with the type in an envelope, so a decode gives back the same type.

    Values are ``[tag, payload]``: the tag names one of ``types`` (``""`` is ``None``, a
    cached "no such thing"). Decoding with the right typed decoder keeps frozen Structs
    frozen and datetimes timezone-aware.
    """

    def __init__(self, types: Iterable[type[Any]]) -> None:
        self._tags: dict[type[Any], str] = {}
        self._decoders: dict[str, msgspec.msgpack.Decoder[Any]] = {}
        for t in types:
            self._tags[t] = t.__name__
            self._decoders[t.__name__] = msgspec.msgpack.Decoder(t)
        self._encoder = msgspec.msgpack.Encoder()
        self._envelope = msgspec.msgpack.Decoder(tuple[str, msgspec.Raw])

    def encodable(self, value: object) -> bool:
        return value is None or type(value) in self._tags

    def encode(self, value: object) -> bytes:
        tag = "" if value is None else self._tags[type(value)]
        return self._encoder.encode((tag, value))

    def decode(self, data: bytes) -> object:
        tag, raw = self._envelope.decode(data)
        return None if tag == "" else self._decoders[tag].decode(raw)


class Fetched(NamedTuple):
    """An L2 answer: the value (``NO_VALUE`` on a miss), and for a miss the write-back token."""

    value: object
    token: tuple[bytes, bytes, bytes] | None
    ttl: float  # seconds left on a hit, 0 on a miss


@dataclass(slots=True)
class TierCounters:
    hits: int = 0
    misses: int = 0
    stores: int = 0
    stores_refused: int = 0  # write-backs an invalidation made stale: the race, caught
    invalidations: int = 0
    errors: int = 0


class RedisTier:
    def __init__(
        self,
        client: Redis,
        codec: StructCodec,
        *,
        prefix: str = "bt:",
        tombstone_ttl: float = 600.0,
        retry_after: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.codec = codec
        self.prefix = prefix
        self.counters = TierCounters()
        self._tomb_ms = str(max(1, int(tombstone_ttl * 1000)))
        self._retry_after = retry_after
        self._clock = clock
        self._down_until = -math.inf
        self._fetch = client.register_script(_FETCH)
        self._store = client.register_script(_STORE)
        self._invalidate = client.register_script(_INVALIDATE)

    @classmethod
    def from_url(
        cls, url: str, codec: StructCodec, *, timeout: float = 0.25, **kwargs: Any
    ) -> RedisTier:
        """A client that fails fast: short timeouts, and no silent retries or reconnects."""
        client = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        return cls(client, codec, **kwargs)

    @property
    def available(self) -> bool:
        return self._clock() >= self._down_until

    def reset_circuit(self) -> None:
        self._down_until = -math.inf

    async def _call(self, script: Any, args: Sequence[object]) -> Any:
        try:
            return await script(args=list(args))
        except (TimeoutError, RedisError, OSError) as exc:
            self.counters.errors += 1
            self._down_until = self._clock() + self._retry_after
            raise TierUnavailable(f"redis: {exc}") from exc

    async def fetch(self, key: str) -> Fetched:
        epoch, gen, raw, pttl = await self._call(self._fetch, (self.prefix, key, namespace_of(key)))
        if raw and not raw.startswith(_TOMBSTONE):
            try:
                value = self.codec.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError, KeyError):
                # Written by a version with other types: a miss, and overwritable.
                value = NO_VALUE
            else:
                self.counters.hits += 1
                return Fetched(value, None, max(int(pttl), 1) / 1000)
        self.counters.misses += 1
        return Fetched(NO_VALUE, (epoch, gen, raw), 0.0)

    async def store(
        self, key: str, value: object, ttl: float, token: tuple[bytes, bytes, bytes]
    ) -> bool:
        """Store ``value`` unless the key was invalidated since ``token`` was handed out."""
        if not self.codec.encodable(value):
            return False
        epoch, gen, previous = token
        stored = await self._call(
            self._store,
            (
                self.prefix,
                key,
                namespace_of(key),
                epoch,
                gen,
                previous,
                self.codec.encode(value),
                max(1, int(ttl * 1000)),
            ),
        )
        if stored:
            self.counters.stores += 1
        else:
            self.counters.stores_refused += 1
        return bool(stored)

    async def invalidate(
        self,
        keys: Sequence[str] = (),
        prefixes: Sequence[str] = (),
        *,
        channel: str = "",
        message: bytes = b"",
    ) -> int:
        """Tombstone ``keys``, drop ``prefixes``, then publish ``message``; one round trip.

        A prefix within one namespace (``"top_banners:"``) moves that namespace's
        generation; any other prefix (``""`` is everything) replaces the epoch: dropping
        more than asked is always safe. Returns the subscribers that got the message.
        """
        epoch = b""
        namespaces: set[str] = set()
        for prefix in prefixes:
            if ":" in prefix:
                namespaces.add(prefix.partition(":")[0])
            else:
                epoch = new_token()
        pairs: list[str] = []
        for key in keys:
            pairs += (namespace_of(key), key)
        args: list[object] = [
            self.prefix,
            self._tomb_ms,
            _TOMBSTONE + os.urandom(8),
            epoch,
            channel,
            message,
            len(pairs),
            *pairs,
            *sorted(namespaces),
        ]
        receivers = await self._call(self._invalidate, args)
        self.counters.invalidations += 1
        return int(receivers)

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except (TimeoutError, RedisError, OSError) as exc:
            raise TierUnavailable(f"redis: {exc}") from exc

    def subscription(self) -> TierSubscription:
        """A pub/sub connection of its own (the bus listens on it); errors map as here."""
        return TierSubscription(self.client.pubsub())

    async def close(self) -> None:
        await self.client.aclose()


def new_token() -> bytes:
    return os.urandom(8).hex().encode()
