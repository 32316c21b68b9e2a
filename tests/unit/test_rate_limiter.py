"""The promo pacer on a fake clock: overall rate, per-chat spacing, 429 pauses."""

from __future__ import annotations

import asyncio

from conversations.broadcast import RateLimiter


class FakeTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


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
