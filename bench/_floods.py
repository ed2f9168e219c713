"""The flood phases of ``bench/faults.py``: made-up methods and slow bodies.

Each measures what a flood leaves behind in the server (RSS of the process tree, size of
``/metrics``) and whether the tracking link keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from pathlib import Path

import httpx
import psutil

from _http import request_bytes, run
from _servers import ADMIN_TOKEN, Server, bannertrack_server

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BANNER = {"name": "f", "image_url": "https://a.example/i", "target_url": "https://a.example/"}


def rss_mib(server: Server) -> float:
    assert server.proc is not None
    root = psutil.Process(server.proc.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


async def make_banner(url: str) -> int:
    async with httpx.AsyncClient(base_url=url, headers=ADMIN) as client:
        return int((await client.post("/api/v1/banners", json=BANNER)).json()["id"])


async def flood_phase(work: Path, methods: int) -> None:
    server = bannertrack_server(f"sqlite:///{work / 'flood.db'}", {}, work / "flood.log").start()
    try:
        banner = await make_banner(server.url)
        async with httpx.AsyncClient(base_url=server.url) as client:
            size = len((await client.get("/metrics")).content)
            rss = rss_mib(server)
            made_up = await run(
                "127.0.0.1", server.port,
                lambda i: f"M{i:06d} /c/{banner} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
                connections=16, total=methods, duration=60,
            )  # fmt: skip
            t = time.monotonic()
            after = len((await client.get("/metrics")).content)
            scrape = time.monotonic() - t
            print(
                f"{'made-up methods':<22} {made_up.responses} answered {dict(made_up.statuses)}"
                f" in {made_up.elapsed:.1f}s; RSS {rss:.1f} -> {rss_mib(server):.1f} MiB; "
                f"/metrics {size} -> {after} bytes, scrape {scrape * 1000:.0f} ms"
            )
            await slow_bodies(server, client, banner)
    finally:
        server.stop()


async def slow_bodies(server: Server, client: httpx.AsyncClient, banner: int) -> None:
    """1,200 connections send a 200-byte body at 1 byte per 2 s; /c/{id} is timed meanwhile."""
    path = f"/api/v1/banners/{banner}/clicks"
    head = request_bytes("POST", path, headers={"Content-Length": "200", **ADMIN})
    answers: Counter[str] = Counter()

    async def slow() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        except OSError as exc:
            answers[type(exc).__name__] += 1
            return
        try:
            writer.write(head)
            for _ in range(8):  # at most 16 s
                writer.write(b" ")
                with contextlib.suppress(TimeoutError):
                    status = await asyncio.wait_for(reader.readline(), 2.0)
                    answers[status.split()[1].decode() if status else "closed"] += 1
                    return
            answers["still open"] += 1
        except OSError:
            answers["reset"] += 1
        finally:
            writer.close()

    rss = rss_mib(server)
    attackers = [asyncio.create_task(slow()) for _ in range(1_200)]
    await asyncio.sleep(3.0)
    worst = 0.0
    for _ in range(10):
        t = time.monotonic()
        r = await client.get(f"/c/{banner}")
        worst = max(worst, time.monotonic() - t)
        assert r.status_code == 302, r.status_code
        await asyncio.sleep(0.5)
    peak = rss_mib(server)
    await asyncio.gather(*attackers)
    print(
        f"{'slow bodies x1200':<22} /c/{{id}} slowest {worst * 1000:.0f} ms; slow requests "
        f"{dict(answers)}; RSS {rss:.1f} -> {peak:.1f} (during) -> {rss_mib(server):.1f} MiB"
    )
