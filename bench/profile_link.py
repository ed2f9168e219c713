"""Where the tracking link's CPU goes: py-spy on one worker under wrk, summed by frame.

Starts the service (SQLite or a throwaway PostgreSQL) with 20 banners, drives ``GET
/c/{id}`` with ``wrk`` (the same request mix as ``click_path.py``: 1,000 visitors behind a
trusted proxy) for 14 s, and records the granian worker with ``py-spy record --gil`` for
10 s of it (only the thread holding the GIL is sampled: on one worker that is the CPU the
link competes for). Prints wrk's req/s and p99, then the frames by own samples and by
samples under them.

    .venv/bin/python bench/profile_link.py sqlite 256
    .venv/bin/python bench/profile_link.py postgresql 64 --tree /tmp/other-checkout
    .venv/bin/python bench/profile_link.py sqlite 64 --click-id --all-threads

``--click-id`` gives the banners a ``click_id_param`` (a random click id per click, issue
28). ``--all-threads`` samples every thread that is running, not only the GIL holder: the
SQLite writer thread does its work with the GIL released.

Needs ``wrk`` on PATH and ``py-spy`` (``pip install py-spy``; it reads another process's
memory, so it may need root or ``kernel.yama.ptrace_scope=0``). Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import click_path  # noqa: E402
from _servers import bannertrack_server, create_postgres_database, postgres_admin_url  # noqa: E402


def summarise(raw: Path, top: int, match: list[str]) -> None:
    total = 0
    matched: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    under: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            under[frame] += n
        for text in match:
            if text in stack:
                matched[text] += n
    print(f"{total} samples")
    for text in match:
        print(f"{100 * matched[text] / total:5.1f}% of samples have {text!r} on the stack")
    for title, counter in (("own samples", own), ("samples under the frame", under)):
        print(f"--- by {title}")
        for frame, n in counter.most_common(top):
            print(f"{100 * n / total:5.1f}% {frame}")


def profile(
    url: str,
    conns: int,
    tree: Path,
    work: Path,
    top: int,
    match: list[str],
    click_id: bool = False,
    all_threads: bool = False,
) -> None:
    env = {"BANNERTRACK_TRUSTED_PROXIES": "127.0.0.1", "PYTHONPATH": str(tree / "src")}
    server = bannertrack_server(url, env, work / "server.log").start()
    try:
        click_path.create_banners(server.url, "bt_click" if click_id else None)
        assert server.proc is not None
        script = work / "link.lua"
        script.write_text(click_path.WRK_SCRIPT)
        worker = subprocess.check_output(["pgrep", "-P", str(server.proc.pid)]).split()[0]
        wrk = subprocess.Popen(
            ["wrk", "-t2", f"-c{conns}", "-d14s", "-s", str(script), server.url, "--",
             "/c/%d", str(click_path.N_BANNERS), str(click_path.N_VISITORS), "2"],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(2)
        raw = work / "raw.txt"
        subprocess.run(
            ["py-spy", "record", "-p", worker.decode(), "-d", "10", "-r", "200", "-f", "raw",
             "-o", str(raw), "--nonblocking", *([] if all_threads else ["--gil"])],
            check=True, capture_output=True,
        )  # fmt: skip
        out, _ = wrk.communicate()
        for line in out.splitlines():
            if "Requests/sec" in line or "WRKJSON" in line:
                print(line.strip())
    finally:
        server.stop()
    summarise(raw, top, match)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", choices=["sqlite", "postgresql"])
    parser.add_argument("connections", type=int)
    parser.add_argument("--tree", type=Path, default=ROOT, help="source tree to profile")
    parser.add_argument("--top", type=int, default=40, help="frames per list")
    parser.add_argument(
        "--match", action="append", default=[], metavar="TEXT",
        help="also print the share of samples with TEXT on the stack (repeatable)",
    )  # fmt: skip
    parser.add_argument("--click-id", action="store_true", help="banners with a click_id_param")
    parser.add_argument(
        "--all-threads", action="store_true", help="sample every running thread, not the GIL's"
    )
    args = parser.parse_args()
    extra = (args.click_id, args.all_threads)
    for tool in ("wrk", "py-spy"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not on PATH")
    with tempfile.TemporaryDirectory(prefix="bt-profile-") as tmp:
        work = Path(tmp)
        if args.database == "sqlite":
            url = f"sqlite:///{work / 'link.db'}"
            profile(url, args.connections, args.tree, work, args.top, args.match, *extra)
            return
        with postgres_admin_url() as admin:
            url = asyncio.run(create_postgres_database(admin))
            profile(url, args.connections, args.tree, work, args.top, args.match, *extra)


if __name__ == "__main__":
    main()
