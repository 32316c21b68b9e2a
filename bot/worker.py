"""The background worker: runs fulfilment's resume pass when kicked and every few seconds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

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
