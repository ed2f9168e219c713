"""What the running service reports about its own parts (the invalidation bus, the
spool), for ``/healthz``, ``/metrics`` and the admin API. Kept here, at the ground,
so the metrics can name them without importing the parts."""

from __future__ import annotations

from datetime import datetime

import msgspec


class SpoolStats(msgspec.Struct, frozen=True, kw_only=True):
    """What one process's spool holds, for ``/healthz`` and ``/metrics``."""

    batches: int
    clicks: int
    impressions: int
    oldest_age_s: float
    bytes: int
    max_bytes: int
    spooled_clicks: int  # acknowledged from the spool since start
    replayed_clicks: int  # replayed into the database since start
    rejected_batches: int
    database_down: bool
    last_replay_at: datetime | None  # when batches last left the spool for the database


class CopyStats(msgspec.Struct, frozen=True, kw_only=True):
    """The in-memory copy of the clicks that answers filtered figures (``db/click_copy``)."""

    loaded: bool
    clicks: int
    bytes: int
    gaps: int  # ids skipped by a later commit, still awaited (PostgreSQL)
    floor: datetime | None  # the oldest instant it covers


class BusStats(msgspec.Struct, frozen=True, kw_only=True):
    """What the invalidation bus (``caching.bus``) has done: read by the admin API and
    the metrics, which must not import the bus to name it."""

    kind: str
    instance: str
    connected: bool
    published: int
    publish_failures: int
    publishes_skipped: int
    received: int
    applied: int
    own_ignored: int
    malformed: int
    outages: int
    recoveries: int
    down_seconds: float  # of the current outage, 0 when connected
    delay_samples: int
    delay_ms_p50: float | None
    delay_ms_p99: float | None
    delay_ms_max: float | None
