"""The served app freezes its start-up heap, so full collections stay short under load."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from bannertrack.api.app import create_app
from bannertrack.bootstrap.heap import settle_heap
from bannertrack.config import Settings


@pytest.fixture
def fresh_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_settle_heap_moves_live_objects_out_of_the_collectors_sight(fresh_gc: None) -> None:
    assert gc.get_freeze_count() == 0
    settle_heap()
    assert gc.get_freeze_count() > 10_000  # this test process's whole heap
    young, *_ = gc.get_threshold()
    assert young >= 10_000  # short-lived click objects die young instead of being promoted


async def test_served_app_settles_after_start_up_and_test_apps_do_not(
    fresh_gc: None, tmp_path: Path
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'h.db'}")
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_freeze_count() == 0
    async with AsyncTestClient(create_app(settings, settle=True)) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert gc.get_freeze_count() > 0
