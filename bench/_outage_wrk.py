"""The outage rows' link load from ``wrk``, not from a Python client on the server's cores.

``click_path.WRK_SCRIPT``'s visitors (1,000 behind a trusted proxy, browser agents, over
the banners) in its marked mode: one connection per wrk thread, each waiting an exponential
gap of ``gap_ms`` on average between its clicks (a steady, modest rate: ``connections``
visitors' connections at about ``1000 / gap_ms`` clicks/s each while the link is fast; the
rate falls only if the link slows down, which the printed rate shows). Every click carries
a marker Referer, so the scenario (``tests/support/outage_scenario.py``) checks acknowledged
against stored per click, as with ``tests/support/outage_load.LinkLoad``.

One wrk run per window (before, during, after): wrk's latency histogram is per run, so
each window's p50/p99/max is its own. A window sends for its ``seconds`` and then idles
``grace`` seconds, so no click is in flight when wrk stops; ``interrupt`` ends it at once
(SIGINT: wrk stops and reports), for the service's SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.outage_load import MARK, Window

import click_path


@dataclass
class WrkLoad:
    base_url: str
    banners: list[int]
    connections: int = 8
    gap_ms: float = 16.0
    grace: float = 2.0
    acked: set[int] = field(default_factory=set)
    unanswered: set[int] = field(default_factory=set)
    statuses: Counter[int | str] = field(default_factory=Counter)
    _runs: int = 0

    def __post_init__(self) -> None:
        # The script names banners 1..n by a format: the scenario's fresh database gives those.
        if self.banners != list(range(1, len(self.banners) + 1)):
            raise ValueError(f"banners must be 1..n, got {self.banners}")

    async def window(
        self, name: str, seconds: float, interrupt: asyncio.Event | None = None
    ) -> Window:
        self._runs += 1
        base = self._runs * 100_000_000  # markers of this run: base + seq * threads + thread
        c = self.connections
        with tempfile.TemporaryDirectory(prefix="bt-wrk-") as tmp:
            script = Path(tmp) / "link.lua"
            script.write_text(click_path.WRK_SCRIPT)
            env = {
                **os.environ,
                "BT_WRK_MARK": MARK,
                "BT_WRK_BASE": str(base),
                "BT_WRK_GAP_MS": str(self.gap_ms),
                "BT_WRK_SEND_S": str(seconds),
            }
            argv = [
                "wrk", f"-t{c}", f"-c{c}", f"-d{seconds + self.grace:g}s", "--timeout", "10s",
                "-s", str(script), self.base_url, "--", "/c/%d", str(len(self.banners)),
                str(click_path.N_VISITORS), str(c),
            ]  # fmt: skip
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            output = asyncio.create_task(proc.communicate())
            if interrupt is not None:
                stop = asyncio.create_task(interrupt.wait())
                await asyncio.wait({output, stop}, return_when=asyncio.FIRST_COMPLETED)
                stop.cancel()
                if not output.done():
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(signal.SIGINT)
            out = (await output)[0].decode()
            wall = min(time.monotonic() - started, seconds)
        return self._parse(name, out, proc.returncode, wall, base)

    def _parse(self, name: str, out: str, code: int | None, wall: float, base: int) -> Window:
        lines = out.splitlines()
        summary = next((x for x in lines if x.startswith("WRKJSON ")), None)
        marks = [json.loads(x[9:]) for x in lines if x.startswith("WRKMARKS ")]
        if code not in (0, -signal.SIGINT) or summary is None or len(marks) != self.connections:
            raise RuntimeError(f"wrk failed ({code}):\n{out}")
        d = json.loads(summary.removeprefix("WRKJSON "))
        statuses: Counter[int | str] = Counter()
        for t in marks:
            statuses.update({int(k): v for k, v in t["statuses"].items()})
            sent = {base + s * self.connections + t["id"] for s in range(t["seq"])}
            lost = set(t["unanswered"])
            self.unanswered |= lost
            self.acked |= sent - lost - set(t["other"])
        errors = d["connect"] + d["read"] + d["write"] + d["timeout"]
        if errors:
            statuses["socket errors"] += errors
        self.statuses.update(statuses)
        return Window(
            name=name,
            seconds=wall,
            answers=sum(v for k, v in statuses.items() if isinstance(k, int)),
            statuses=statuses,
            p50_ms=d["p50_us"] / 1000,
            p99_ms=d["p99_us"] / 1000,
            max_ms=d["max_us"] / 1000,
        )
