"""What the click batches of two workers wait on: pg_stat_activity sampled under load.

Starts a throwaway PostgreSQL and a ``bannertrack api`` with ``--workers`` N, drives the
tracking link with ``wrk`` (the click_path workload), and samples every backend of the
server's database every 20 ms: its wait event, the statement it runs, and for a backend
waiting on a lock, what its blockers (``pg_blocking_pids``) are doing. Prints the share
of samples per (wait event, statement) and per (blocked statement <- blocker statement),
and the rows each table inserted and updated (HOT updates apart).

    .venv/bin/python bench/lock_waits.py --workers 2 --connections 64 --seconds 8
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from _servers import (  # noqa: E402
    bannertrack_server,
    create_postgres_database,
    drop_postgres_database,
    postgres_admin_url,
)
from click_path import LOADS, create_banners, run_wrk  # noqa: E402

SAMPLE = """
SELECT a.pid, coalesce(a.wait_event_type, '') || ':' || coalesce(a.wait_event, 'on CPU'),
       a.state, left(regexp_replace(a.query, '\\s+', ' ', 'g'), 70),
       (SELECT string_agg(coalesce(b.state, '') || ' ' ||
                          left(regexp_replace(b.query, '\\s+', ' ', 'g'), 50), ' | ')
          FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(a.pid)))
  FROM pg_stat_activity a
 WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
   AND a.backend_type = 'client backend' AND a.state <> 'idle'
"""


async def sample(url: str, stop: threading.Event) -> tuple[int, Counter[str], Counter[str]]:
    import asyncpg  # type: ignore[import-untyped]

    from bannertrack.db.urls import async_url

    dsn = async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    waits: Counter[str] = Counter()
    blocked: Counter[str] = Counter()
    n = 0
    try:
        while not stop.is_set():
            n += 1
            for _pid, event, state, query, blockers in await conn.fetch(SAMPLE):
                waits[f"{event:<24} {state:<20} {query}"] += 1
                if blockers:
                    blocked[f"{query[:50]}  <-  {blockers}"] += 1
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    return n, waits, blocked


TABLE_UPDATES = """
SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup
  FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd > 0 ORDER BY relname
"""


async def table_updates(url: str) -> list[tuple[str, int, int, int, int]]:
    """Rows inserted and updated per table, and how many updates were HOT (no index
    entry written: only when no indexed column changes and the page has room)."""
    import asyncpg  # type: ignore[import-untyped]

    from bannertrack.db.urls import async_url

    dsn = async_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await asyncio.sleep(0.7)  # the statistics collector reports every 500 ms
        return [tuple(r) for r in await conn.fetch(TABLE_UPDATES)]
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace, work: Path) -> None:
    with postgres_admin_url() as admin:
        url = await create_postgres_database(admin)
        try:
            env = {
                "BANNERTRACK_TRUSTED_PROXIES": "127.0.0.1",
                "BANNERTRACK_WORKERS": str(args.workers),
            }
            server = bannertrack_server(url, env, work / "server.log").start()
            try:
                create_banners(server.url)
                run_wrk(server.port, LOADS["link"], args.connections, 2, work)  # warm-up
                stop = threading.Event()
                task = asyncio.create_task(sample(url, stop))
                wrk = await asyncio.to_thread(
                    run_wrk, server.port, LOADS["link"], args.connections, args.seconds, work
                )
                stop.set()
                n, waits, blocked = await task
                updates = await table_updates(url)
            finally:
                server.stop()
        finally:
            await drop_postgres_database(admin, url)
    print(f"{args.workers} worker(s), c{args.connections}: {wrk.rate:,.0f} req/s; {n} samples")
    print("backends per sample, by (wait event, state, statement):")
    for key, count in waits.most_common(args.top):
        print(f"  {count / n:6.3f}  {key}")
    print("rows per table: inserted, updated, of which HOT, dead")
    for name, ins, upd, hot, dead in updates:
        print(f"  {name:<20} {ins:>10,} {upd:>10,} {hot:>10,} {dead:>10,}")
    print("lock waits per sample, by (waiting statement <- blockers):")
    for key, count in blocked.most_common(args.top):
        print(f"  {count / n:6.3f}  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bt-bench-locks-") as work:
        asyncio.run(main_async(args, Path(work)))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
