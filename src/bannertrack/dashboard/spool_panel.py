"""The outage spool on ``/ops``: one row per worker, from the figures ``/healthz`` reports.

This worker's row is its live ``SpoolStats``; the others' come from their snapshots on the
worker board (``workers.py``), up to a second old, each with the figures it reported.
Nothing is estimated here: the state is read off the figures (the database known down:
"spooling"; batches waiting while it answers: "replaying"; neither: "healthy").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bannertrack.bootstrap.workers import WorkerFigures
from bannertrack.models import SpoolStats

SpoolState = Literal["healthy", "spooling", "replaying"]
SpoolStatsOf = Callable[[], SpoolStats | None]


def spool_state(stats: SpoolStats) -> SpoolState:
    if stats.database_down:
        return "spooling"
    if stats.batches:
        return "replaying"
    return "healthy"


def ago(seconds: float) -> str:
    """A short age: "0.4 s", "42 s", "3 min", "2 h 5 min"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


@dataclass(frozen=True, slots=True)
class SpoolRow:
    pid: int
    this_worker: bool
    state: SpoolState
    full: bool
    stats: SpoolStats
    oldest: str  # the oldest waiting batch's age, "" when none waits
    last_replay: str  # how long ago, "" when none since start
    last_replay_at: datetime | None


def spool_rows(
    pid: int, own: SpoolStats | None, others: list[WorkerFigures], now: datetime
) -> list[SpoolRow]:
    """This worker first, then the others with a spool, by pid."""
    found = [(pid, True, own)] + [(f.pid, False, f.spool) for f in others]
    rows = []
    for worker, this, stats in found:
        if stats is None:
            continue
        at = stats.last_replay_at
        rows.append(
            SpoolRow(
                pid=worker,
                this_worker=this,
                state=spool_state(stats),
                full=stats.bytes >= stats.max_bytes * 0.99,
                stats=stats,
                oldest=ago(stats.oldest_age_s) if stats.batches else "",
                last_replay=ago(max(0.0, (now - at).total_seconds())) if at else "",
                last_replay_at=at,
            )
        )
    return rows
