"""The per-chat message window: a flood is told once then dropped; quiet chats are forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from conversations.limits import MessageRate, Rate
from conversations.model import Channel, ChatKey

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def chat(n: int) -> ChatKey:
    return ChatKey(Channel.TELEGRAM, str(1000 + n))


def test_past_the_limit_a_chat_is_told_once_then_dropped_until_its_minute_passes():
    rate = MessageRate(limit=3)
    seconds = [0, 1, 2, 3, 4, 60]
    got = [rate.admit(chat(1), T0 + timedelta(seconds=s)) for s in seconds]

    assert got == [Rate.ADMIT] * 3 + [Rate.REFUSE, Rate.DROP, Rate.ADMIT]
    assert rate.admit(chat(2), T0 + timedelta(seconds=4)) is Rate.ADMIT  # others are not held


def test_chats_quiet_for_a_minute_are_forgotten_so_memory_follows_the_recent_ones():
    rate = MessageRate(limit=20)
    for n in range(5_000):  # a new chat every 0.2 s, as in the benchmark's purchases
        rate.admit(chat(n), T0 + timedelta(seconds=0.2 * n))

    assert len(rate) <= 2 * 60 / 0.2  # the chats of the last two minutes at most, not all 5,000


@settings(max_examples=200, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 400)), max_size=80))
def test_forgetting_never_changes_a_verdict(messages: list[tuple[int, int]]):
    """Against a window that never forgets: the same answers, message by message."""
    rate, never_forgets = MessageRate(limit=3), MessageRate(limit=3)
    never_forgets._forget = lambda now: None  # type: ignore[method-assign]
    for n, at in sorted(messages, key=lambda m: m[1]):
        when = T0 + timedelta(seconds=at)
        assert rate.admit(chat(n), when) is never_forgets.admit(chat(n), when)
