"""The login throttle: a window of failures per key, forgotten as it slides."""

from __future__ import annotations

from bot.admin.security import Throttle


class Ticks:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_limit_blocks_within_the_window_and_lifts_after_it():
    ticks = Ticks()
    throttle = Throttle(limit=3, window=60, clock=ticks)
    for _ in range(3):
        throttle.failed("ana@x.pe")

    blocked = throttle.blocked("ana@x.pe")
    ticks.now = 61
    lifted = throttle.blocked("ana@x.pe")

    assert blocked and not lifted
    assert not throttle.blocked("luis@x.pe")


def test_keys_with_no_recent_failure_are_swept_when_many():
    ticks = Ticks()
    throttle = Throttle(limit=3, window=60, clock=ticks, sweep_above=100)
    for n in range(100):
        throttle.failed(f"guess{n}@x.pe")
    ticks.now = 61

    throttle.failed("one-more@x.pe")

    assert list(throttle._failures) == ["one-more@x.pe"]
