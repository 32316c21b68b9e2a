"""The background worker: a kick runs a pass at once, the interval runs one anyway, and a pass
that fails is logged without stopping the loop (the periodic reconciler relies on all three)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bot.worker import Worker

WITHIN = 5.0  # seconds: generous, the passes below come in milliseconds


class Passes:
    """A pass that counts itself, fails when told to, and lets a test wait for the n-th."""

    def __init__(self, *, failing: int = 0) -> None:
        self.done = 0
        self.failing = failing
        self.changed = asyncio.Condition()

    async def __call__(self) -> None:
        async with self.changed:
            self.done += 1
            self.changed.notify_all()
        if self.done <= self.failing:
            raise RuntimeError("the provider is down")

    async def reach(self, count: int) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: self.done >= count), WITHIN)


@contextlib.asynccontextmanager
async def running(worker: Worker):
    task = asyncio.create_task(worker.run_forever())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_kick_runs_a_pass_long_before_the_interval():
    passes = Passes()
    worker = Worker(passes, interval=3600)

    async with running(worker):
        worker.kick()
        await passes.reach(1)

    assert passes.done == 1


async def test_without_kicks_a_pass_runs_every_interval():
    passes = Passes()

    async with running(Worker(passes, interval=0.01)):
        await passes.reach(3)

    assert passes.done >= 3


async def test_a_failing_pass_is_logged_and_the_next_one_still_runs(caplog):
    passes = Passes(failing=2)

    async with running(Worker(passes, interval=0.01)):
        await passes.reach(3)

    failures = [r for r in caplog.records if r.getMessage() == "worker pass failed"]
    assert len(failures) == 2 and all(r.levelno == logging.ERROR for r in failures)
