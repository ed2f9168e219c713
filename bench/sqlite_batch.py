"""What the breakdowns cost SQLite's writer thread: one click batch, with and without them.

No HTTP, no event loop: ``sqlite_clicks.write_batch`` called directly on a migrated SQLite
file (WAL, synchronous=FULL: the engine's pragmas), 20 banners, 1,000 visitors with the
link benchmark's user agents and addresses (``click_path.py``), facts from
``clicks.facts.derive``. Two databases, batches written alternately to each: one the
service's way, one without breakdowns (no facts on the clicks and no ``click_breakdowns``
rows, what the baseline tree of docs/benchmarks.md switches off). Printed per batch size:
the median thread CPU time per batch of each (``thread_time``: SQLite's work included,
the fsync wait not), the difference, and the ratio with / without. A child process per tree
imports that tree's ``bannertrack`` (``TREE/src``), so two trees can be compared.

    .venv/bin/python bench/sqlite_batch.py                 # this tree
    .venv/bin/python bench/sqlite_batch.py . /tmp/base     # this tree, then another one
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIZES = (4, 64, 256)
BATCHES = 400  # per size and database; the first 10 are not timed


def _measure() -> dict[str, list[float]]:
    import asyncio
    import sqlite3

    import msgspec

    import bannertrack.db.sqlite_clicks as sc
    from bannertrack.clicks.facts import derive
    from bannertrack.db.breakdown_writes import BreakdownFold
    from bannertrack.db.engine import create_engine
    from bannertrack.db.migrate import upgrade
    from bannertrack.models import ClickIn

    def database(path: Path) -> sqlite3.Connection:
        engine = create_engine(f"sqlite:///{path}")
        asyncio.run(upgrade(engine))
        conn = sqlite3.connect(path, isolation_level=None)
        engine.sync_engine.pool.dispatch.connect(conn, None)  # the engine's pragmas
        stamp = "2026-11-30 00:00:00.000000"
        for i in range(1, 21):
            conn.execute(
                "INSERT INTO banners (id, name, image_url, target_url, active, forward_query,"
                " created_at, updated_at) VALUES (?, 'b', 'https://x.example/i.png',"
                " 'https://x.example/', 1, 1, ?, ?)",
                (i, stamp, stamp),
            )
            conn.execute(
                "INSERT INTO banner_totals (banner_id, total_clicks, valid_clicks, bot_clicks,"
                " repeat_clicks) VALUES (?, 0, 0, 0, 0)",
                (i,),
            )
        return conn

    visitors = []
    for i in range(1000):  # as click_path.WRK_SCRIPT
        agent = f"Mozilla/5.0 (X11; Linux x86_64) bench/{i % 50}"
        visitors.append((i % 20 + 1, agent, f"v{i:04d}", f"198.51.{i % 200}.{i % 250}"))
    with_breakdowns = sc._add_breakdowns
    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bt-sqlite-batch-") as tmp:
        for size in SIZES:
            sides: dict[str, Any] = {
                "with": (database(Path(tmp) / f"with-{size}.db"), with_breakdowns),
                "without": (database(Path(tmp) / f"without-{size}.db"), lambda *_: None),
            }
            times: dict[str, list[float]] = {"with": [], "without": []}
            folds = {"with": BreakdownFold(), "without": BreakdownFold()}
            at = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
            k = 0
            for n in range(BATCHES):
                batch = []
                for _ in range(size):
                    banner, agent, visitor, address = visitors[k % len(visitors)]
                    k += 1
                    batch.append(
                        ClickIn(
                            banner_id=banner,
                            occurred_at=at + timedelta(microseconds=80 * k),
                            user_agent=agent,
                            visitor=visitor,
                            facts=derive(address, agent, None, ""),
                        )
                    )
                bare = [msgspec.structs.replace(c, facts=None) for c in batch]
                for side in ("with", "without") if n % 2 else ("without", "with"):
                    conn, add = sides[side]
                    sc._add_breakdowns = add
                    started = time.thread_time()
                    sc.write_batch(
                        conn, batch if side == "with" else bare, 3600 * 10**6, folds[side], []
                    )
                    if n >= 10:
                        times[side].append(time.thread_time() - started)
            sc._add_breakdowns = with_breakdowns
            for side, (conn, _) in sides.items():
                conn.close()
                out[f"{size} {side}"] = times[side]
    return out


def child(tree: Path) -> dict[str, list[float]]:
    code = (
        "import json, sys; sys.path[:0] = [sys.argv[1] + '/src', sys.argv[2]];"
        "import sqlite_batch; print(json.dumps(sqlite_batch._measure()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tree), str(ROOT / "bench")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    trees = [Path(a).resolve() for a in sys.argv[1:]] or [ROOT]
    for tree in trees:
        got = child(tree)
        print(f"{tree}: thread CPU per batch (median of {BATCHES - 10}), microseconds")
        for size in SIZES:
            on = statistics.median(got[f"{size} with"]) * 1e6
            off = statistics.median(got[f"{size} without"]) * 1e6
            print(
                f"  batch {size:3d}: with {on:6.0f}  without {off:6.0f}  breakdowns {on - off:5.0f}"
                f" ({(on - off) / size:5.2f} a click)  CPU with / without {on / off:.2f}"
            )


if __name__ == "__main__":
    main()
