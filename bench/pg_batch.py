"""CPU of one PostgreSQL click batch on the client side: ``SqlRepository.record_clicks`` alone.

No HTTP: a child process per tree imports that tree's ``bannertrack`` (``TREE/src``),
creates 20 banners in a fresh database of a throwaway ``pgserver`` and records batches of
1, 4, 32 and 256 clicks (1,000 visitors, 5% bots, three sets of facts). Printed per batch
size, the medians over rounds of: the CPU time of this process per batch (``process_time``,
so PostgreSQL's own work and waiting are not in it), PostgreSQL's CPU time per batch (its
processes' user + system time from /proc over all the timed batches of the size, so
10 ms ticks are a small part of it), and the wall time per batch. With two trees the
rounds alternate and the ratio first / second is printed.

    .venv/bin/python bench/pg_batch.py . /tmp/base    # this tree against another one
    .venv/bin/python bench/pg_batch.py --rounds 7 . /tmp/base
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1, 4, 32, 256)
KINDS = ("cpu", "pg", "wall")  # this process's CPU, PostgreSQL's CPU, wall time
ROUNDS, TIMED = 3, 15  # rounds per tree; timed groups of 10 batches per size and round


async def _measure(url: str) -> dict[str, float]:
    from bannertrack.db.migrate import upgrade
    from bannertrack.db.repository import SqlRepository
    from bannertrack.models import BannerCreate, ClickFacts, ClickIn
    from bannertrack.timeutil import utcnow
    from click_path import cpu_delta, postmaster_pid, tree_cpu

    postmaster = await postmaster_pid(url)
    repo = SqlRepository.from_url(url)
    await upgrade(repo.engine)
    new = [
        BannerCreate(name=f"b{i}", image_url="https://x.example/i.png", target_url="https://x.ex/")
        for i in range(20)
    ]
    ids = [(await repo.create_banner(b)).id for b in new]
    rnd = random.Random(1)
    facts = [ClickFacts(country=c, device="desktop", browser="Firefox") for c in ("DE", "US", None)]

    def batch(n: int) -> list[ClickIn]:
        now = utcnow()
        return [
            ClickIn(
                banner_id=rnd.choice(ids),
                occurred_at=now,
                user_agent="Mozilla/5.0 bench",
                visitor=f"{rnd.randrange(1000):064d}",
                bot=rnd.random() < 0.05,
                facts=rnd.choice(facts),
            )
            for _ in range(n)
        ]

    out: dict[str, float] = {}
    for n in SIZES:
        for _ in range(3):
            await repo.record_clicks(batch(n))
        cpu, wall = [], []
        pg_before = tree_cpu(postmaster)
        for _ in range(TIMED):
            batches = [batch(n) for _ in range(10)]
            c0, w0 = time.process_time(), time.perf_counter()
            for b in batches:
                await repo.record_clicks(b)
            cpu.append((time.process_time() - c0) / 10)
            wall.append((time.perf_counter() - w0) / 10)
        out[f"pg {n}"] = cpu_delta(pg_before, tree_cpu(postmaster)) / (TIMED * 10) * 1e6
        out[f"cpu {n}"] = statistics.median(cpu) * 1e6
        out[f"wall {n}"] = statistics.median(wall) * 1e6
    await repo.close()
    return out


def main(trees: list[Path], rounds: int = ROUNDS) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from _servers import create_postgres_database, drop_postgres_database, postgres_admin_url

    runs: dict[Path, list[dict[str, float]]] = {t: [] for t in trees}
    with postgres_admin_url() as admin:
        for r in range(rounds):
            for tree in trees if r % 2 == 0 else trees[::-1]:
                url = asyncio.run(create_postgres_database(admin))
                child = subprocess.run(
                    [sys.executable, __file__, "--child", str(tree), url],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs[tree].append(json.loads(child.stdout.splitlines()[-1]))
                asyncio.run(drop_postgres_database(admin, url))
    med: dict[Path, dict[str, float]] = {
        t: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for t, rs in runs.items()
    }
    print(f"rounds: {rounds}; medians, microseconds per batch")
    head = "| batch | " + " | ".join(f"{k} {i + 1}" for i in range(len(trees)) for k in KINDS)
    ratios = len(trees) == 2
    if ratios:
        head += " | " + " | ".join(f"{k} 1/2" for k in KINDS)
    print(head + " |")
    print("|---:" * head.count("|") + "|")
    for n in SIZES:
        cells = [f"{med[t][f'{k} {n}']:,.0f}" for t in trees for k in KINDS]
        if ratios:
            a, b = med[trees[0]], med[trees[1]]
            cells += [f"{a[f'{k} {n}'] / b[f'{k} {n}']:.2f}" for k in KINDS]
        print(f"| {n} | " + " | ".join(cells) + " |")
    for i, tree in enumerate(trees, 1):
        print(f"tree {i}: {tree}")


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        sys.path.insert(0, str(Path(sys.argv[2]).resolve() / "src"))
        sys.path.insert(1, str(ROOT / "bench"))
        result: Any = asyncio.run(_measure(sys.argv[3]))
        print(json.dumps(result))
    else:
        args = sys.argv[1:]
        rounds = ROUNDS
        if args[:1] == ["--rounds"]:
            rounds, args = int(args[1]), args[2:]
        main([Path(a).resolve() for a in args], rounds)
