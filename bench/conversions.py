"""Conversions per second: ``POST /api/v1/conversions`` against a click report, same run.

Real server processes (``python -m bannertrack api``, one worker) on SQLite and on
PostgreSQL (a throwaway ``pgserver``), driven by ``wrk`` over keep-alive connections on
127.0.0.1. Each server gets 20 banners with a ``click_id_param`` and ``--clicks`` clicks
through the tracking link, whose click ids are read from the Locations. Then, in
interleaved rounds, three loads with the ingest token:

- ``click report``: ``POST /api/v1/banners/{id}/clicks``, the other server-to-server
  write, as the reference (``x click report`` is each row's ratio to it, same round);
- ``conversion``: a new (click id, goal) every request: the click looked up by its id,
  the conversion inserted, three rollups upserted, one transaction, 201;
- ``retry``: a (click id, goal) already stored: the click and the first conversion read,
  nothing written, 200.

Every conversion run is checked: the rollups' count equals the conversions stored, and
every answer was 201 (new) or 200 (retry).

    .venv/bin/python bench/conversions.py --runs 3 --duration 3

Linux only. ``wrk`` must be on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _servers import (  # noqa: E402
    ADMIN_TOKEN,
    INGEST_TOKEN,
    Server,
    bannertrack_server,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)

N_BANNERS = 20
PARAM = "bt_click"
RETRY_IDS = 200  # the retry load cycles over these, all converted in the warm-up

WRK_SCRIPT = (
    """
-- args: mode (click | new | retry), ids file, round tag. Each wrk thread is its own Lua
-- state: its thread number goes into the goal, so no two requests of a "new" run repeat.
local next_id = 0
setup = function(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end
init = function(args)
  mode, tag = args[1], args[3]
  ids = {}
  for line in io.lines(args[2]) do ids[#ids + 1] = line end
  if mode == "retry" then
    local few = {}
    for k = 1, math.min(#ids, RETRY_IDS) do few[k] = ids[k] end
    ids = few
  end
  n = 0
  headers = {}
  headers["Authorization"] = "Bearer INGEST_TOKEN"
  headers["Content-Type"] = "application/json"
end
request = function()
  n = n + 1
  if mode == "click" then
    return wrk.format("POST", "/api/v1/banners/" .. ((n % N_BANNERS) + 1) .. "/clicks", headers,
      '{"ip": "198.51.100.' .. (n % 250) .. '", "user_agent": "bench"}')
  end
  local goal = "again"
  if mode == "new" then goal = tag .. "t" .. tid .. "n" .. math.floor(n / #ids) end
  return wrk.format("POST", "/api/v1/conversions", headers,
    '{"click_id": "' .. ids[(n % #ids) + 1] .. '", "goal": "' .. goal
    .. '", "value": "19.90", "currency": "EUR"}')
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bad_status": %d, "socket": %d, '
    .. '"p99_us": %d}\\n', summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(99)))
end
""".replace("RETRY_IDS", str(RETRY_IDS))
    .replace("INGEST_TOKEN", INGEST_TOKEN)
    .replace("N_BANNERS", str(N_BANNERS))
)


@dataclass
class Sample:
    rate: float
    p99_ms: float
    ratio: float


@dataclass
class Row:
    server: str
    load: str
    samples: list[Sample] = field(default_factory=list)


@dataclass
class Target:
    name: str
    server: Server
    url: str
    ids_file: Path


def run_wrk(port: int, mode: str, ids: Path, tag: str, conns: int, seconds: float, work: Path
            ) -> tuple[float, float, int]:  # fmt: skip
    script = work / "conversions.lua"
    if not script.exists():
        script.write_text(WRK_SCRIPT)
    argv = [
        "wrk", "-t1", f"-c{conns}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script),
        f"http://127.0.0.1:{port}", "--", mode, str(ids), tag,
    ]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed:\n{out}")
    d = json.loads(line.removeprefix("WRKJSON "))
    bad = d["bad_status"] + d["socket"]
    return d["requests"] / (d["duration_us"] / 1e6), d["p99_us"] / 1000, bad


async def click_ids(url: str, clicks: int) -> list[str]:
    """Banners with a click_id_param, then ``clicks`` link clicks: their ids."""
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=admin, timeout=30) as c:
        for i in range(N_BANNERS):
            body = {
                "name": f"bench {i}",
                "image_url": f"https://ads.example/{i}.png",
                "target_url": f"https://shop.example/{i}",
                "click_id_param": PARAM,
            }
            (await c.post("/api/v1/banners", json=body)).raise_for_status()
        sem = asyncio.Semaphore(16)

        async def one(i: int) -> str:
            async with sem:
                r = await c.get(f"/c/{i % N_BANNERS + 1}", follow_redirects=False)
                return parse_qs(urlsplit(r.headers["location"]).query)[PARAM][0]

        return list(await asyncio.gather(*(one(i) for i in range(clicks))))


async def counts(database_url: str) -> tuple[int, int]:
    from sqlalchemy import func, select

    from bannertrack.db.engine import create_engine
    from bannertrack.db.tables import conversion_totals, conversions

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(func.count()).select_from(conversions))).scalar()
            rolled = (
                await conn.execute(
                    select(func.coalesce(func.sum(conversion_totals.c.conversions), 0))
                )
            ).scalar()
            return int(rows or 0), int(rolled or 0)
    finally:
        await engine.dispose()


def table(rows: list[Row]) -> str:
    lines = [
        "| server | load | req/s | x click report | p99 ms |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        s = r.samples
        lines.append(
            f"| {r.server} | {r.load} | {statistics.median(x.rate for x in s):,.0f} "
            f"| {statistics.median(x.ratio for x in s):.2f} "
            f"| {statistics.median(x.p99_ms for x in s):.1f} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace, work: Path) -> int:
    problems: list[str] = []
    rows: dict[tuple[str, str], Row] = {}
    async with contextlib.AsyncExitStack() as astack:
        stack = astack.enter_context(contextlib.ExitStack())
        targets: list[Target] = []
        for db in args.databases:
            if db == "sqlite":
                url = f"sqlite:///{work / 'bench.db'}"
            else:
                pg_admin = stack.enter_context(postgres_admin_url())
                url = await create_postgres_database(pg_admin)
                astack.push_async_callback(drop_postgres_database, pg_admin, url)
            env = {"PYTHONPATH": str(ROOT / "src")}
            server = bannertrack_server(url, env, work / f"{db}.log").start()
            astack.callback(server.stop)
            ids = await click_ids(server.url, args.clicks)
            ids_file = work / f"{db}.ids"
            ids_file.write_text("\n".join(ids) + "\n")
            targets.append(Target(f"{db}, 1 worker", server, url, ids_file))
        print("warm-up", file=sys.stderr)
        for t in targets:
            for mode in ("click", "new", "retry"):
                run_wrk(t.server.port, mode, t.ids_file, "w", args.connections, 1, work)
            # Every retry id converted once (the warm-up may not have reached them all).
            async with httpx.AsyncClient(base_url=t.server.url, timeout=30) as c:
                for click_id in t.ids_file.read_text().split()[:RETRY_IDS]:
                    r = await c.post(
                        "/api/v1/conversions",
                        json={"click_id": click_id, "goal": "again", "value": "19.90",
                              "currency": "EUR"},
                        headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
                    )  # fmt: skip
                    r.raise_for_status()
        for round_no in range(args.runs):
            print(f"round {round_no + 1}", file=sys.stderr)
            for t in targets if round_no % 2 == 0 else list(reversed(targets)):
                ref = 0.0
                for mode, load in (("click", "click report"), ("new", "conversion"),
                                   ("retry", "retry")):  # fmt: skip
                    tag = f"r{round_no}"
                    rate, p99, bad = run_wrk(
                        t.server.port, mode, t.ids_file, tag, args.connections, args.duration, work
                    )
                    if bad:
                        problems.append(f"{t.name} {load}: {bad} answers not 2xx or lost")
                    ref = rate if mode == "click" else ref
                    row = rows.setdefault((t.name, load), Row(t.name, load))
                    row.samples.append(Sample(rate, p99, rate / ref if ref else 0.0))
                stored, rolled = await counts(t.url)
                if stored != rolled:
                    problems.append(f"{t.name}: {stored} conversions stored, rollups say {rolled}")
    print(
        f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"wrk -c{args.connections}, {args.runs} runs of {args.duration:g} s per row, medians; "
        f"{args.clicks} click ids; load average {os.getloadavg()[0]:.1f} at the end\n"
    )
    print(table(list(rows.values())))
    for p in problems:
        print(f"PROBLEM {p}")
    if not problems:
        print("\nevery answer 201 (new) or 200 (retry); conversions stored == rollups")
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="measured rounds")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--clicks", type=int, default=2000, help="click ids to convert")
    parser.add_argument(
        "--database",
        dest="databases",
        action="append",
        choices=("sqlite", "postgresql"),
        help="repeatable; default both",
    )
    args = parser.parse_args()
    args.databases = args.databases or ["sqlite", "postgresql"]
    if shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bt-bench-conv-") as work:
        code = asyncio.run(main_async(args, Path(work)))
    sys.exit(code)


if __name__ == "__main__":
    main()
