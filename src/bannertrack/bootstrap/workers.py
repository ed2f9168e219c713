"""Every worker counted: the workers of one server share their figures through files.

granian's workers are separate processes, each with its own cache and its own metrics;
a request reaches whichever worker the kernel hands the connection to. So each worker
writes a snapshot of its figures (cache statistics and its Prometheus exposition) to
``<workers_dir>/<pid>.json`` every ``interval`` seconds, and the one that answers
``/api/v1/cache/stats`` or ``/metrics`` reads the others' snapshots beside its own live
figures. Another worker's figures are therefore up to ``interval`` old; each carries its
age. This is prometheus-client's multiprocess idea (a file per process, merged at
scrape time) without its limits: our cache figures are read from the cache at collection
time by a custom collector, which multiprocess mode cannot carry.

A snapshot is written atomically (a temporary file, then ``os.replace``), so a reader
sees a whole one or the previous one. A worker removes its file when it stops; the file
of a worker that died without stopping is ignored once its process is gone or its
snapshot is older than ``STALE_AFTER`` intervals, and removed by the next reader.

``bannertrack api`` makes a private directory for this when ``BANNERTRACK_WORKERS_DIR``
is empty and removes it on exit; an app built without one (tests, benchmarks) reports
itself alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from bannertrack.cache import CacheStats
from bannertrack.models import SpoolStats
from bannertrack.tasks import BackgroundTask, every

log = logging.getLogger("bannertrack.bootstrap.workers")

STALE_AFTER = 5  # intervals without a snapshot before a worker no longer counts


class WorkerFigures(msgspec.Struct, frozen=True):
    """One worker's figures at ``written_at`` (Unix time)."""

    pid: int
    written_at: float
    cache: CacheStats | None  # None when the cache is off
    exposition: str  # its Prometheus text, without the pid label
    spool: SpoolStats | None = None  # its outage spool; None without one


class WorkerBoard:
    """This worker's snapshots out, and the other workers' snapshots in."""

    def __init__(
        self,
        directory: Path,
        figures: Callable[[], WorkerFigures],
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.pid = os.getpid()
        self._figures = figures
        self._interval = interval
        self._clock = clock
        self._task = BackgroundTask(
            every(interval, self.publish, on_error=self._failed), name="worker snapshot"
        )
        self._path = directory / f"{self.pid}.json"

    async def __aenter__(self) -> WorkerBoard:
        await self.publish()  # at once: a reader must not wait an interval to see us
        await self._task.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._task.stop()
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self._path.unlink)

    def _failed(self, exc: Exception) -> None:
        log.warning("could not write this worker's figures to %s: %s", self.directory, exc)

    async def publish(self) -> None:
        """Write this worker's snapshot now."""
        data = msgspec.json.encode(_encodable(self._figures()))
        await asyncio.to_thread(_write_atomically, self._path, data)

    async def others(self) -> list[WorkerFigures]:
        """The live snapshots of the other workers of this server, by pid."""
        return await asyncio.to_thread(self._read_others)

    def _read_others(self) -> list[WorkerFigures]:
        out: list[WorkerFigures] = []
        now = self._clock()
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError:
            return out
        for path in paths:
            if path == self._path:
                continue
            try:
                figures = msgspec.json.decode(path.read_bytes(), type=WorkerFigures)
            except (OSError, msgspec.ValidationError, msgspec.DecodeError):
                continue  # vanished between the listing and the read, or foreign
            if not _alive(figures.pid):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            if now - figures.written_at > STALE_AFTER * self._interval:
                continue  # alive but silent (stopped, or stuck): not counted
            out.append(figures)
        return sorted(out, key=lambda f: f.pid)


def _encodable(figures: WorkerFigures) -> WorkerFigures:
    # The cache hands out a read-only mapping proxy, which msgspec does not encode.
    if figures.cache is None:
        return figures
    cache = dataclasses.replace(figures.cache, namespaces=dict(figures.cache.namespaces))
    return msgspec.structs.replace(figures, cache=cache)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, whoever it is
        return True
    return True
