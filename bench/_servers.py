"""Server processes and throwaway databases shared by the HTTP benchmarks.

``bannertrack_server`` runs the real service (``python -m bannertrack api``: granian +
Litestar, one worker); ``bare_server`` runs ``bare_app`` under granian the same way, the
ceiling of the HTTP layer with this client on this machine. PostgreSQL is a throwaway
``pgserver`` unless ``BANNERTRACK_BENCH_DATABASE_URL`` names a server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TOKEN = "bench-admin-token"
INGEST_TOKEN = "bench-ingest-token"  # what a server reporting clicks holds


# the do-nothing app --------------------------------------------------------------------


class BareReport(msgspec.Struct, frozen=True, kw_only=True):
    ip: str | None = None
    user_agent: str | None = None
    referrer: str | None = None


class BareRecorded(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    banner_id: int


class BareStats(msgspec.Struct, frozen=True, kw_only=True):
    banner_id: int
    total_clicks: int
    clicks_last_hour: int
    clicks_last_24h: int
    first_click_at: str | None
    last_click_at: str | None


def bare_app() -> Any:
    """Granian factory: the service's HTTP shapes with no work behind them."""
    from litestar import Litestar, Response, get, post

    counter = iter(range(1, 2**62))
    no_store = {"Cache-Control": "private, no-store"}

    @post("/api/v1/banners/{banner_id:int}/clicks", status_code=201)
    async def click(banner_id: int, data: BareReport | None = None) -> BareRecorded:
        return BareRecorded(id=next(counter), banner_id=banner_id)

    @get("/c/{banner_id:int}", media_type="text/plain")
    async def link(banner_id: int) -> Response[bytes]:
        # The tracking link's shape: a 302 to a fixed target, nothing recorded.
        location = f"https://shop.example/{banner_id}"
        return Response(b"", status_code=302, headers={"Location": location, **no_store})

    @get("/api/v1/banners/{banner_id:int}/stats")
    async def stats(banner_id: int) -> BareStats:
        return BareStats(
            banner_id=banner_id,
            total_clicks=1234,
            clicks_last_hour=12,
            clicks_last_24h=345,
            first_click_at="2026-11-01T00:00:00Z",
            last_click_at="2026-11-30T09:00:00Z",
        )

    @get("/p/{placement_id:int}", media_type="text/html")
    async def serve(placement_id: int) -> Response[bytes]:
        # A placement serve's shape: a small HTML document, nothing chosen or counted.
        body = (
            b'<!doctype html><html><body><a href="https://t.example/c/1?p=1&amp;ts=1&amp;sig=x"'
            b' target="_top"><img src="https://cdn.example/1.png" alt="b"></a></body></html>'
        )
        return Response(body, headers={"Cache-Control": "no-store"})

    @get("/const")
    async def const() -> dict[str, int]:
        return {"answer": 42}

    @get("/healthz")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(
        route_handlers=[click, link, stats, serve, const, health],
        debug=False,
        logging_config=None,
        signature_namespace={"Response": Response},  # annotations are strings here
    )


async def bare_asgi_app(scope: Any, receive: Any, send: Any) -> None:
    """A plain ASGI app answering ``GET /c/{id}`` with the link's 302: no framework at all.

    The tracking link is served by an ASGI fast path in front of Litestar, so next to
    the bare Litestar handler this is the other honest ceiling: granian alone.
    """
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/healthz":
        status, headers = 200, [(b"content-type", b"text/plain"), (b"content-length", b"0")]
    else:
        location = b"https://shop.example/" + scope["path"].rpartition("/")[2].encode()
        headers = [
            (b"location", location),
            (b"cache-control", b"private, no-store"),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"0"),
        ]
        status = 302
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


# processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server child process on a loopback port; SIGTERM on stop."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = [a.replace("{port}", str(self.port)) for a in argv]
        self.env = {**os.environ, **env, "BANNERTRACK_PORT": str(self.port)}
        self.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Server:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become healthy:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def bannertrack_server(database_url: str, env: dict[str, str], log_path: Path) -> Server:
    return Server(
        [sys.executable, "-m", "bannertrack", "api"],
        {
            "BANNERTRACK_DATABASE_URL": database_url,
            "BANNERTRACK_HOST": "127.0.0.1",
            "BANNERTRACK_ADMIN_TOKEN": ADMIN_TOKEN,
            "BANNERTRACK_INGEST_TOKEN": INGEST_TOKEN,
            "BANNERTRACK_LOG_LEVEL": "WARNING",
            **env,
        },
        log_path,
    )


def bare_server(log_path: Path, *, asgi: bool = False) -> Server:
    """The bare Litestar app, or with ``asgi`` the framework-less one, under granian."""
    target = ["bench._servers:bare_asgi_app"] if asgi else ["--factory", "bench._servers:bare_app"]
    return Server(
        [
            sys.executable, "-m", "granian", "--interface", "asgi",
            "--host", "127.0.0.1", "--port", "{port}", "--workers", "1", "--no-access-log",
            # The loop bannertrack's workers run (BANNERTRACK_HTTP_LOOP), not granian's auto.
            "--loop", os.environ.get("BANNERTRACK_HTTP_LOOP", "asyncio"),
            *target,
        ],
        {},
        log_path,
    )  # fmt: skip


# databases -----------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_admin_url() -> Iterator[str]:
    given = os.environ.get("BANNERTRACK_BENCH_DATABASE_URL")
    if given:
        yield given
        return
    if not os.environ.get("XDG_RUNTIME_DIR"):
        os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="bt-runtime-")
    import pgserver

    with tempfile.TemporaryDirectory(prefix="bt-bench-pg-") as data:
        server = pgserver.get_server(data, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


async def admin_sql(admin_url: str, statement: str) -> None:
    from sqlalchemy import text

    from bannertrack.db.engine import create_engine

    engine = create_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def create_postgres_database(admin_url: str) -> str:
    """A new empty database on the admin URL's server; returns its URL."""
    from sqlalchemy.engine import make_url

    name = f"bt_bench_{uuid.uuid4().hex[:10]}"
    await admin_sql(admin_url, f"CREATE DATABASE {name}")
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(admin_url: str, url: str) -> None:
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    with contextlib.suppress(Exception):
        await admin_sql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
