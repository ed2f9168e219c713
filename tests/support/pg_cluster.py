"""A PostgreSQL of its own (pgserver), to stop, start, freeze and thaw for real.

The shared test server cannot be stopped under the other tests, so an outage of the real
thing gets its own cluster: ``stop()`` is ``pg_ctl stop -m fast`` (connections are
closed, new ones refused, and on ``start()`` the first ones meet "the database system is
starting up"), ``freeze()`` sends SIGSTOP to the postmaster and every backend (open
connections stay open and nothing moves), ``thaw()`` SIGCONT.
"""

from __future__ import annotations

import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil


class PgCluster:
    def __init__(self, server: Any) -> None:
        self._server = server
        self.url: str = server.get_uri()

    def _processes(self) -> list[psutil.Process]:
        pid = self._server.get_pid()
        if pid is None:
            return []
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]

    def stop(self) -> None:
        from pgserver import pg_ctl

        pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self._server.pgdata, user=self._server.system_user
        )

    def start(self) -> None:
        self._server.ensure_postgres_running()

    def freeze(self) -> None:
        for proc in self._processes():
            proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        for proc in reversed(self._processes()):
            proc.send_signal(signal.SIGCONT)


@contextmanager
def pg_cluster() -> Iterator[PgCluster]:
    import pgserver

    with tempfile.TemporaryDirectory(prefix="bt-pg-outage-") as data:
        server = pgserver.get_server(data, cleanup_mode="stop")
        cluster = PgCluster(server)
        try:
            yield cluster
        finally:
            cluster.thaw()
            server.cleanup()
