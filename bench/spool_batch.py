"""What the outage spool costs a click batch while the database is healthy (issue 26).

In one process, no server and no database: ``ClickIngest`` over a repository that commits
at once (after one pass of the event loop, as a driver's round trip would), with and
without a ``Spool``, the same batches, rounds alternated. Printed per batch size: CPU
microseconds per batch with the spool off and on, and the difference: the spool's own
per-batch work on the healthy path (the live write as a task, the deadline after which a
batch would be spooled). Nothing is spooled: a healthy write commits before its deadline.

    .venv/bin/python bench/spool_batch.py                 # batches of 4 and 32
    .venv/bin/python bench/spool_batch.py --batch 4 --rounds 20000 --runs 5

The real per-batch cost of a PostgreSQL commit is about a millisecond of the server's CPU
(bench/click_path.py at 4 connections); this isolates the part the spool adds to it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from bannertrack.clicks.ingest import ClickIngest
from bannertrack.clicks.spool import Spool
from bannertrack.models import ClickIn, RecordedClick

T0 = datetime(2026, 12, 6, tzinfo=UTC)


class InstantRepository:
    """Commits every batch after one pass of the loop; stores nothing."""

    async def record_clicks(self, clicks: Sequence[ClickIn]) -> list[RecordedClick | None]:
        await asyncio.sleep(0)
        return [None] * len(clicks)


async def per_batch_us(spooled: bool, size: int, rounds: int) -> float:
    with tempfile.TemporaryDirectory(prefix="bt-spool-batch-") as folder:
        spool = Spool(folder, max_bytes=10**8) if spooled else None
        if spool is not None:
            await spool.open()
        ingest = ClickIngest(InstantRepository(), spool=spool, max_wait=0.0)  # type: ignore[arg-type]
        await ingest.start()
        clicks = [ClickIn(banner_id=1, occurred_at=T0) for _ in range(size)]

        async def one_batch() -> None:
            await asyncio.gather(*(ingest.record(c) for c in clicks))

        for _ in range(200):  # warm-up
            await one_batch()
        started = time.process_time()
        for _ in range(rounds):
            await one_batch()
        spent = time.process_time() - started
        await ingest.stop()
        if spool is not None:
            if spool.batches:
                raise RuntimeError("a healthy batch was spooled")
            await spool.close()
        return spent / rounds * 1e6


async def main_async(args: argparse.Namespace) -> None:
    for size in args.batch:
        off: list[float] = []
        on: list[float] = []
        for _ in range(args.runs):
            off.append(await per_batch_us(False, size, args.rounds))
            on.append(await per_batch_us(True, size, args.rounds))
        diffs = [b - a for a, b in zip(off, on, strict=True)]
        print(
            f"batch of {size}: spool off {statistics.median(off):.1f} us, on "
            f"{statistics.median(on):.1f} us per batch; the spool adds "
            f"{statistics.median(diffs):.1f} us per batch (median of {args.runs} alternated "
            f"runs of {args.rounds:,} batches; per run: "
            + ", ".join(f"{d:+.1f}" for d in diffs)
            + ")"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--batch", type=int, action="append", help="clicks per batch (default 4 and 32)"
    )
    parser.add_argument("--rounds", type=int, default=10_000, help="batches per run")
    parser.add_argument("--runs", type=int, default=3, help="alternated runs per side")
    args = parser.parse_args()
    args.batch = args.batch or [4, 32]
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
