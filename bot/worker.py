"""The background worker: runs the resume pass (orders, outbox) when kicked and every few seconds;
and the outbox's retry timers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from conversations.model import ChatKey

logger = logging.getLogger(__name__)


class Worker:
    """Serialises resume passes: a kick during a pass schedules exactly one more pass."""

    def __init__(self, work: Callable[[], Awaitable[None]], *, interval: float) -> None:
        self._work = work
        self._interval = interval
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def kick(self) -> None:
        self._wake.set()

    async def run_once(self) -> None:
        """Run one pass now (tests and the demo call this to wait for the outcome)."""
        async with self._lock:
            self._wake.clear()
            await self._work()

    async def run_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            try:
                await self.run_once()
            except Exception:
                logger.exception("worker pass failed")


class Timers:
    """Run ``target(key)`` after a delay, in this process: the outbox's retries.

    Timers die with the process; the worker's pass finds what they would have sent (the outbox
    keeps each retry's due time)."""

    def __init__(self) -> None:
        self.target: Callable[[ChatKey], Awaitable[None]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def later(self, key: ChatKey, delay: timedelta) -> None:
        task = asyncio.get_running_loop().create_task(self._run(key, delay.total_seconds()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, key: ChatKey, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.target is None:
            return
        try:
            await self.target(key)
        except Exception:
            logger.exception("outbox retry failed")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
