"""The promo pacer on a fake clock: overall rate, per-chat spacing, 429 pauses."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Coroutine
from typing import Any

from conversations.broadcast import RateLimiter


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


class VirtualTime:
    """A clock for concurrent callers: it moves, to the earliest wake-up, once all of them sleep."""

    def __init__(self) -> None:
        self.now = 100.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        woken = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), next(self._order), woken))
        await woken

    async def run(self, *callers: Coroutine[Any, Any, None]) -> None:
        tasks = [asyncio.create_task(caller) for caller in callers]
        while not all(task.done() for task in tasks):
            await asyncio.sleep(0)  # every caller runs until it sleeps or ends
            if self._sleepers and len(self._sleepers) == sum(not t.done() for t in tasks):
                self.now, _, woken = heapq.heappop(self._sleepers)
                woken.set_result(None)


async def send_times(limiter: RateLimiter, clock: FakeTime, chats: list[str]) -> list[float]:
    times = []
    for chat in chats:
        async with limiter.slot(chat):
            times.append(round(clock.now - 100.0, 6))
    return times


async def test_sends_are_spaced_at_the_rate():
    clock = FakeTime()
    limiter = RateLimiter(4, clock=clock, sleep=clock.sleep)

    times = await send_times(limiter, clock, [str(n) for n in range(6)])

    assert times == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]


async def test_one_chat_waits_its_own_spacing_others_do_not():
    clock = FakeTime()
    limiter = RateLimiter(100, per_chat=1.0, clock=clock, sleep=clock.sleep)

    times = await send_times(limiter, clock, ["a", "b", "a"])

    assert times == [0.0, 0.01, 1.0]


async def test_a_429_pauses_every_later_send():
    clock = FakeTime()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    await send_times(limiter, clock, ["a"])

    limiter.pause(2.0)
    (after,) = await send_times(limiter, clock, ["b"])

    assert after == 2.0


async def test_concurrent_callers_never_share_a_slot():
    clock = FakeTime()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    seen: list[float] = []

    async def one() -> None:
        async with limiter.slot():
            seen.append(round(clock.now - 100.0, 6))

    await asyncio.gather(*(one() for _ in range(5)))

    assert len(set(seen)) == 5


async def test_a_chat_waiting_its_spacing_holds_up_no_other_chat():
    clock = VirtualTime()
    limiter = RateLimiter(10, per_chat=1.0, clock=clock, sleep=clock.sleep)
    sent: dict[str, float] = {}

    async def send(chat: str, name: str) -> None:
        async with limiter.slot(chat):
            sent[name] = round(clock.now - 100.0, 6)

    await clock.run(send("a", "a1"), send("a", "a2"), send("b", "b"))

    assert sent == {"a1": 0.0, "b": 0.1, "a2": 1.0}


async def test_a_send_refused_with_429_does_not_count_for_its_chat_spacing():
    clock = FakeTime()
    limiter = RateLimiter(10, per_chat=1.0, clock=clock, sleep=clock.sleep)
    await send_times(limiter, clock, ["a"])

    limiter.pause(0.5, "a")  # nothing reached chat a: its retry waits for the pause only
    (retry,) = await send_times(limiter, clock, ["a"])

    assert retry == 0.5
