"""A database outage never strands a visitor: real PostgreSQL stopped, frozen (SIGSTOP),
and stopped with the service SIGKILLed mid-outage, under steady link load from browser
visitors. Short bounded versions of bench/faults.py's outage rows.

After each: no answer but 302 to a known banner, every acknowledged click stored exactly
once, and every rollup and repeat flag equal to a recount from the raw clicks. The
negative control runs the same stop with the spool turned off: 503s, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.outage_scenario import run_outage
from tests.support.pg_cluster import PgCluster, pg_cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with pg_cluster() as c:
        yield c


@pytest.mark.parametrize("fault", ["stop", "freeze", "kill"])
async def test_an_outage_strands_no_visitor_and_loses_no_click(
    cluster: PgCluster, tmp_path: Path, fault: str
) -> None:
    figures = await run_outage(cluster, f"bt_outage_{fault}", fault, 3.0, tmp_path)  # type: ignore[arg-type]
    print(figures.line())
    assert figures.during > 50  # the load really ran through the outage
    assert figures.non_302_known == 0
    if fault != "kill":
        assert figures.errors == 0  # no visitor left without an answer
    assert figures.lost == figures.doubled == figures.extra == 0
    # Stored = acknowledged, plus clicks in flight when the service was killed (stored,
    # never answered: the one allowed difference, never the other way round).
    assert figures.stored == figures.acknowledged + figures.unanswered_stored
    assert figures.recount_problems == []
    if fault != "kill":
        # On a shared, busy machine an absolute bound measures the neighbours: the outage
        # must be no slower than the same run while healthy (bench/faults.py: the goal).
        assert figures.p99_during_ms <= 2 * figures.p99_before_ms + 250


async def test_negative_control_without_the_spool_visitors_get_503(
    cluster: PgCluster, tmp_path: Path
) -> None:
    figures = await run_outage(
        cluster,
        "bt_outage_nospool",
        "stop",
        3.0,
        tmp_path,
        env={"BANNERTRACK_SPOOL_ENABLED": "false"},
    )
    print(figures.line())
    assert figures.non_302_known > 0
    assert figures.lost == figures.doubled == 0
