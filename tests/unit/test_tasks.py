"""The background-task primitive: idempotent start/stop, fake time, honest cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import pytest

from bannertrack.tasks import BackgroundTask, every
from tests.support.fake_time import FakeSleep


def _named(name: str) -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == name]


async def _forever() -> None:
    await asyncio.Event().wait()


async def test_start_and_stop_are_idempotent_and_restartable() -> None:
    task = BackgroundTask(_forever, name="t-idem")
    await task.stop()  # never started: nothing to do
    await task.start()
    await task.start()
    assert len(_named("t-idem")) == 1 and task.running
    await task.stop()
    await task.stop()
    assert _named("t-idem") == [] and not task.running
    await task.start()
    assert len(_named("t-idem")) == 1
    await task.stop()


async def test_it_is_an_async_context_manager() -> None:
    async with BackgroundTask(_forever, name="t-cm") as task:
        assert task.running
    assert not task.running and _named("t-cm") == []


class SlowToStop:
    """A body whose clean-up after cancellation takes until ``release`` is set."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            await self.release.wait()
            raise


Stop = Callable[[], Awaitable[None]]


async def _cancel_while_stopping(
    begin: Callable[[SlowToStop], Awaitable[Stop]],
) -> BaseException | None:
    """Start ``body`` the way ``begin`` does, stop it with what ``begin`` returns, and
    cancel that stop while the body is still cleaning up: what reaches the stop's caller."""
    body = SlowToStop()
    stop = await begin(body)
    await asyncio.sleep(0)
    stopper = asyncio.create_task(stop())
    await body.cancelled.wait()  # stop() has cancelled the task and waits for it
    stopper.cancel()  # now the shutdown itself is cancelled
    body.release.set()
    try:
        await stopper
    except asyncio.CancelledError as exc:
        return exc
    return None


async def test_stop_passes_on_a_cancellation_aimed_at_its_caller() -> None:
    async def primitive(body: SlowToStop) -> Stop:
        runner = BackgroundTask(body, name="slow to stop")
        await runner.start()
        return runner.stop

    assert isinstance(await _cancel_while_stopping(primitive), asyncio.CancelledError)


async def test_the_check_catches_a_stop_that_swallows_it() -> None:
    # Negative control: the idiom the primitive replaces loses the caller's cancellation.
    async def swallowing(body: SlowToStop) -> Stop:
        task = asyncio.create_task(body())

        async def stop() -> None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        return stop

    assert await _cancel_while_stopping(swallowing) is None


async def test_join_waits_for_the_body_and_never_cancels_it() -> None:
    done = asyncio.Event()

    async def body() -> None:
        await done.wait()

    task = BackgroundTask(body, name="t-join")
    await task.start()
    assert await task.join(within=0.01) is False
    assert task.running  # a timed-out join leaves it running
    done.set()
    assert await task.join(within=None) is True
    assert not task.running


async def test_a_body_that_fails_is_logged_when_stopped(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("boom")

    task = BackgroundTask(broken, name="t-broken")
    await task.start()
    await asyncio.sleep(0)
    await task.stop()
    assert "background task t-broken failed" in caplog.text
    assert "boom" in caplog.text


async def test_every_runs_a_step_per_interval_on_fake_time() -> None:
    sleep = FakeSleep()
    runs: list[float] = []

    async def step() -> None:
        runs.append(sleep.now)

    async with BackgroundTask(every(10.0, step, on_error=print, sleep=sleep), name="t-every"):
        await sleep.wait_for_sleepers(1)
        assert runs == []  # waits an interval first
        await sleep.advance(9.0)
        assert runs == []
        await sleep.advance(1.0)
        await sleep.advance(10.0)
        assert runs == [10.0, 20.0]


async def test_every_first_runs_at_once() -> None:
    sleep = FakeSleep()
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1

    async with BackgroundTask(every(5.0, step, on_error=print, sleep=sleep, first=True), name="t"):
        await sleep.wait_for_sleepers(1)
        assert runs == 1
        await sleep.advance(5.0)
        assert runs == 2


async def test_a_failing_step_is_reported_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sleep = FakeSleep()
    errors: list[Exception] = []
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("first run fails")

    async with BackgroundTask(every(1.0, step, on_error=errors.append, sleep=sleep), name="t"):
        await sleep.wait_for_sleepers(1)
        await sleep.advance(1.0)
        await sleep.advance(1.0)
    assert calls == 2
    assert [str(e) for e in errors] == ["first run fails"]
    assert caplog.records == [r for r in caplog.records if r.levelno < logging.ERROR]
