"""A small HTTP/1.1 keep-alive load generator on raw asyncio sockets.

Why not httpx or aiohttp: at tens of thousands of requests per second a client library
spends more CPU per request than the server under test, and on a 2-core machine the
client shares the CPU with the server (and with the database). This one does the least
a correct client must: N connections, each sending one request and reading the whole
response (status line, headers, a ``Content-Length`` or chunked body) before sending the
next. No pipelining, so every request is a full round trip and its latency is real.

Load is closed-loop: ``connections`` requests are in flight at most, so a slower server
gets fewer requests, not a growing backlog. Runs are bounded by ``total`` requests and/or
``duration`` seconds (at least one is required).

    result = await run("127.0.0.1", 8080, [b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"],
                       connections=32, duration=5)
    print(result.rate, result.percentile(99), result.statuses)

``requests`` is either a list of raw request bytes (used round-robin) or a callable that
gets the request number and returns the bytes. ``on_response(i, status, body)`` sees every
response, e.g. to collect the ids a server handed out. A request that fails (connection
reset, timeout) is counted in ``errors`` and not retried: its outcome is unknown.

Caveat, said plainly: the client runs in one Python process on the same machine. When
the server is fast, the figures measure the pair; compare against a do-nothing endpoint
measured the same way to see where the ceiling is.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

RequestSource = Sequence[bytes] | Callable[[int], bytes]
OnResponse = Callable[[int, int, bytes], None]


@dataclass(slots=True)
class LoadResult:
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, one per response
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0  # requests without a response (reset, timeout)

    @property
    def responses(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        """Responses per second over the whole run."""
        return self.responses / self.elapsed if self.elapsed > 0 else 0.0

    def count(self, *statuses: int) -> int:
        return sum(self.statuses[s] for s in statuses)

    def percentile(self, q: float) -> float:
        """Latency at percentile ``q`` (0-100), nearest rank, in seconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank]


class _Incomplete(Exception):
    pass


def parse_response(buf: bytearray, head_only: bool = False) -> tuple[int, int, bytes, bool]:
    """Parse one response from the front of ``buf``: (consumed, status, body, keep_alive).

    Raises ``_Incomplete`` when more bytes are needed.
    """
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        raise _Incomplete
    head = bytes(buf[:end]).split(b"\r\n")
    status = int(head[0].split(b" ", 2)[1])
    length, chunked, keep_alive = 0, False, not head[0].startswith(b"HTTP/1.0")
    for line in head[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            keep_alive = value.strip().lower() != b"close"
    start = end + 4
    if head_only or status in (204, 304) or 100 <= status < 200:
        return start, status, b"", keep_alive
    if not chunked:
        if len(buf) < start + length:
            raise _Incomplete
        return start + length, status, bytes(buf[start : start + length]), keep_alive
    body = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            raise _Incomplete
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        if size == 0:
            trailer_end = buf.find(b"\r\n\r\n", eol)  # "0\r\n" [trailers] "\r\n"
            if trailer_end < 0:
                raise _Incomplete
            return trailer_end + 4, status, bytes(body), keep_alive
        if len(buf) < eol + 2 + size + 2:
            raise _Incomplete
        body += buf[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.head_only = False
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            consumed, status, body, keep_alive = parse_response(self.buf, self.head_only)
        except _Incomplete:
            return
        except (ValueError, IndexError) as exc:
            waiter.set_exception(ConnectionError(f"bad response: {exc}"))
            return
        del self.buf[:consumed]
        waiter.set_result((status, body, keep_alive))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection closed by the server"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    async def request(self, data: bytes) -> tuple[int, bytes, bool]:
        assert self.transport is not None
        self.head_only = data.startswith(b"HEAD ")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


async def run(
    host: str,
    port: int,
    requests: RequestSource,
    *,
    connections: int = 32,
    total: int | None = None,
    duration: float | None = None,
    request_timeout: float = 10.0,
    on_response: OnResponse | None = None,
) -> LoadResult:
    """Send requests over ``connections`` keep-alive connections until a bound is hit."""
    if total is None and duration is None:
        raise ValueError("give total, duration or both: every run must be bounded")
    if not callable(requests) and not requests:
        raise ValueError("no requests to send")
    loop = asyncio.get_running_loop()
    result = LoadResult()
    issued = 0
    started = time.perf_counter()
    deadline = started + duration if duration is not None else float("inf")

    def next_request() -> tuple[int, bytes] | None:
        nonlocal issued
        if (total is not None and issued >= total) or time.perf_counter() >= deadline:
            return None
        i = issued
        issued += 1
        data = requests(i) if callable(requests) else requests[i % len(requests)]
        return i, data

    async def connect() -> _Connection | None:
        while time.perf_counter() < deadline:
            try:
                _, conn = await loop.create_connection(_Connection, host, port)
                return conn
            except OSError:
                result.errors += 1
                await asyncio.sleep(0.05)
        return None

    async def worker() -> None:
        conn: _Connection | None = None
        try:
            while (item := next_request()) is not None:
                if conn is None or conn.lost:
                    conn = await connect()
                    if conn is None:
                        return
                i, data = item
                t0 = time.perf_counter()
                try:
                    async with asyncio.timeout(request_timeout):
                        status, body, keep_alive = await conn.request(data)
                except (ConnectionError, TimeoutError):
                    result.errors += 1
                    conn.close()
                    conn = None
                    continue
                result.latencies.append(time.perf_counter() - t0)
                result.statuses[status] += 1
                if on_response is not None:
                    on_response(i, status, body)
                if not keep_alive:
                    conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    result.elapsed = time.perf_counter() - started
    return result


def request_bytes(
    method: str,
    path: str,
    *,
    host: str = "127.0.0.1",
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A well-formed HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    all_headers = {"Content-Length": str(len(body))} if body or method != "GET" else {}
    all_headers.update(headers or {})
    if body and "Content-Type" not in all_headers:
        all_headers["Content-Type"] = "application/json"
    lines += [f"{k}: {v}" for k, v in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def main() -> None:
    parser = argparse.ArgumentParser(description="Keep-alive HTTP/1.1 load on one URL.")
    parser.add_argument("url", help="http://127.0.0.1:PORT/path")
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--duration", type=float, default=5.0)
    parser.add_argument("-n", "--total", type=int, default=None)
    parser.add_argument("-m", "--method", default="GET")
    parser.add_argument("--body", default="")
    args = parser.parse_args()
    url = urlsplit(args.url)
    if url.hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("load is only ever sent to a loopback address")
    req = request_bytes(
        args.method, url.path or "/", host=url.netloc, body=args.body.encode("utf-8")
    )
    result = asyncio.run(
        run(
            url.hostname,
            url.port or 80,
            [req],
            connections=args.connections,
            duration=args.duration,
            total=args.total,
        )
    )
    print(
        f"{result.responses} responses in {result.elapsed:.2f}s: {result.rate:,.0f}/s, "
        f"p50 {result.percentile(50) * 1000:.2f} ms, p99 {result.percentile(99) * 1000:.2f} ms, "
        f"statuses {dict(result.statuses)}, errors {result.errors}"
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
