"""What every bus shares: the message, the connection state machine and the counters.

The state machine, run by one task per instance::

      start ──connect──► CONNECTED ──error / failed publish──► DOWN (degraded)
                            ▲                                    │
                            └──── reconnect (backoff), announce ─┘

- DOWN: the instance may miss invalidations, so ``on_state(False)`` cuts what its L1
  holds to ``degraded_ttl`` seconds of life and new entries get no more; a publish is skipped (the
  recovery announcement covers it). ``connected`` is False, for /healthz and metrics.
- Back up: subscribe first, then announce "drop everything" to every instance (we may
  have skipped publishes, and a shared tier may hold what they would have removed),
  then ``on_state(True)`` clears L1 again, and only then ``connected`` turns True.

A transport implements ``_connect``, ``_listen`` (returns or raises when the connection
is lost), ``_disconnect``, ``_send`` and ``_announce_recovery``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence

import msgspec

from bannertrack.cache import Cache
from bannertrack.models import BusStats
from bannertrack.tasks import BackgroundTask, Lifecycle

log = logging.getLogger("bannertrack.bus")

Apply = Callable[[Sequence[str], Sequence[str]], None]
"""Apply another instance's invalidation to the local L1: (keys, prefixes); "" is all."""


def apply_to(cache: Cache) -> Apply:
    """How a message from another instance lands in the local cache (L1 only)."""

    def apply(keys: Sequence[str], prefixes: Sequence[str]) -> None:
        for key in keys:
            cache.delete(key)
        for prefix in prefixes:
            if prefix == "":
                cache.clear()
            else:
                cache.delete_prefix(prefix)

    return apply


OnState = Callable[[bool], None]


class Message(msgspec.Struct, frozen=True, array_like=True):
    sender: str
    sent_ns: int  # time.time_ns() at publish: the receiver measures the bus delay
    keys: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Bus(Lifecycle):
    kind = "none"

    def __init__(
        self,
        apply: Apply,
        on_state: OnState | None = None,
        *,
        heartbeat: float = 1.0,
        backoff_max: float = 2.0,
        connect_wait: float = 3.0,
    ) -> None:
        self.instance_id = uuid.uuid4().hex[:12]
        self._apply = apply
        self._on_state = on_state
        self._heartbeat = heartbeat
        self._backoff_max = backoff_max
        self._connect_wait = connect_wait
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(Message)
        self._connected = False
        self._serving = False
        self._lost = asyncio.Event()
        self._up = asyncio.Event()
        self._task = BackgroundTask(self._run, name=f"bus-{self.kind}")
        self._down_since: float | None = time.monotonic()
        self._delays: deque[float] = deque(maxlen=10_000)
        self.published = self.publish_failures = self.publishes_skipped = 0
        self.received = self.applied = self.own_ignored = self.malformed = 0
        self.outages = self.recoveries = 0

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def degraded(self) -> bool:
        return not self._connected

    async def start(self) -> None:
        """Connect, waiting at most ``connect_wait``: an instance starts degraded, not dead."""
        await self._task.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), self._connect_wait)
        if not self._connected:
            log.warning("invalidation bus (%s) not connected yet: starting degraded", self.kind)
        self._serving = True

    async def stop(self) -> None:
        await self._task.stop()
        self._connected = False
        await self._disconnect()

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                self._lost.clear()
                await self._connect()
                if self._serving:
                    # Up after a time down (or after starting down): we may have skipped
                    # publishes, so every instance must drop what it holds.
                    await self._announce_recovery()
                    self.recoveries += 1
                self._set_state(True)
                attempt = 0
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._connected or attempt == 0:
                    log.warning("invalidation bus (%s) lost: %s", self.kind, exc)
            if self._connected:
                self._set_state(False)
            with contextlib.suppress(Exception):
                await self._disconnect()
            attempt += 1
            delay = min(self._backoff_max, 0.05 * 2**attempt)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    def _set_state(self, connected: bool) -> None:
        if connected == self._connected:
            return
        self._connected = connected
        if connected:
            self._down_since = None
            self._up.set()
            log.info("invalidation bus (%s) connected", self.kind)
        else:
            self._down_since = time.monotonic()
            self._up.clear()
            self.outages += 1
        if self._on_state is not None:
            try:
                self._on_state(connected)
            except Exception:
                log.exception("bus state callback failed")

    def _mark_lost(self) -> None:
        """Go degraded now and make the listener reconnect (and announce)."""
        if self._connected:
            self._set_state(False)
        self._lost.set()

    # --- publishing --------------------------------------------------------------------

    async def publish(self, keys: Sequence[str], prefixes: Sequence[str]) -> None:
        """Tell every other instance; never raises (a failure turns into an outage)."""
        if not keys and not prefixes:
            return
        if not self._connected:
            self.publishes_skipped += 1
            return
        message = self._encode(keys, prefixes)
        try:
            await self._send(keys, prefixes, message)
        except Exception as exc:
            self.publish_failures += 1
            log.warning("invalidation bus (%s) publish failed: %s", self.kind, exc)
            self._mark_lost()
        else:
            self.published += 1

    def carry(self, keys: Sequence[str], prefixes: Sequence[str]) -> tuple[str, str] | None:
        """A NOTIFY (channel, payload) that a PostgreSQL write can send in its own
        transaction, delivered with its commit, in place of ``publish``'s round trip;
        ``None``: this bus cannot be carried (publish instead)."""
        return None

    def carried(self) -> None:
        """A write that carried ``carry``'s NOTIFY has committed."""
        self.published += 1

    def _encode(self, keys: Sequence[str], prefixes: Sequence[str]) -> bytes:
        return self._encoder.encode(
            Message(self.instance_id, time.time_ns(), tuple(keys), tuple(prefixes))
        )

    # --- receiving ---------------------------------------------------------------------

    def _received(self, data: bytes) -> None:
        self.received += 1
        try:
            message = self._decoder.decode(data)
        except msgspec.DecodeError:
            self.malformed += 1
            return
        if message.sender == self.instance_id:
            self.own_ignored += 1
            return
        try:
            self._apply(message.keys, message.prefixes)
        except Exception:  # a bug in apply must not end the listener
            log.exception("applying an invalidation failed; clearing the local cache")
            self._apply((), ("",))
        self.applied += 1
        self._delays.append((time.time_ns() - message.sent_ns) / 1e6)

    def stats(self) -> BusStats:
        delays = sorted(self._delays)
        down = self._down_since
        return BusStats(
            kind=self.kind,
            instance=self.instance_id,
            connected=self._connected,
            published=self.published,
            publish_failures=self.publish_failures,
            publishes_skipped=self.publishes_skipped,
            received=self.received,
            applied=self.applied,
            own_ignored=self.own_ignored,
            malformed=self.malformed,
            outages=self.outages,
            recoveries=self.recoveries,
            down_seconds=0.0 if down is None else round(time.monotonic() - down, 3),
            delay_samples=len(delays),
            delay_ms_p50=round(_percentile(delays, 0.5), 3) if delays else None,
            delay_ms_p99=round(_percentile(delays, 0.99), 3) if delays else None,
            delay_ms_max=round(delays[-1], 3) if delays else None,
        )

    def reset_delays(self) -> None:
        self._delays.clear()

    # --- transport ---------------------------------------------------------------------

    async def _connect(self) -> None:
        raise NotImplementedError

    async def _listen(self) -> None:
        raise NotImplementedError

    async def _disconnect(self) -> None:
        raise NotImplementedError

    async def _send(self, keys: Sequence[str], prefixes: Sequence[str], message: bytes) -> None:
        raise NotImplementedError

    async def _announce_recovery(self) -> None:
        raise NotImplementedError
