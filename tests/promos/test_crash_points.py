"""Where a crash can leave a row of the real delivery log: ``sending`` only while its request is
out, ``pending`` while it waits (queued, or after a 429), its outcome right after the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from conversations.broadcast import Broadcaster, Promo, RateLimiter, RecipientState, RetryLater
from conversations.model import Channel, ChatKey
from storage.campaigns import Audience, SqlCampaigns
from tests.promos.conftest import Customers

PROMO = Promo("¡Doble de megas este fin de semana!")
S = RecipientState


async def delivered(_chat: str) -> RecipientState:
    return S.SENT


@dataclass
class HeldChannel:
    """A promo channel whose requests wait at a gate: a test can kill the sender with them out."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    out: list[str] = field(default_factory=list)  # the chats whose request left, in order
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    answer: Callable[[str], Awaitable[RecipientState]] = delivered  # the channel's, per chat

    async def deliver(self, key: ChatKey, promo: Promo) -> RecipientState:
        async with self.changed:
            self.out.append(key.chat_id)
            self.changed.notify_all()
        await self.gate.wait()
        return await self.answer(key.chat_id)

    async def wait_out(self, count: int) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(self.out) >= count), 5)


def open_channel(**fields: Any) -> HeldChannel:
    channel = HeldChannel(**fields)
    channel.gate.set()
    return channel


@dataclass
class Released:
    """The real delivery log, telling the test when a row went back to pending after a 429."""

    inner: SqlCampaigns
    seen: asyncio.Event = field(default_factory=asyncio.Event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def release(self, recipient_id: int) -> None:
        await self.inner.release(recipient_id)
        self.seen.set()


def broadcaster(campaigns: Any, channel: Any, **knobs: Any) -> Broadcaster:
    """A broadcaster with no pacing to speak of (1,000/s), over one channel."""
    limiters = {Channel.TELEGRAM: RateLimiter(1000)}
    return Broadcaster(campaigns, {Channel.TELEGRAM: channel}, limiters, **knobs)


async def started(campaigns: SqlCampaigns) -> int:
    campaign_id = await campaigns.create(PROMO, Audience((Channel.TELEGRAM,)), created_by="test")
    assert await campaigns.start(campaign_id)
    return campaign_id


async def kill(task: asyncio.Task[Any]) -> None:
    """What a SIGKILL leaves: the run stops where it is, nothing finished or written after."""
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def fresh(campaigns: SqlCampaigns) -> SqlCampaigns:
    """The delivery log as a new process sees it: nothing kept in memory."""
    return SqlCampaigns(campaigns.sessions, clock=campaigns.clock)


async def test_killed_with_four_requests_out_only_those_four_become_unknown(
    campaigns, customers: Customers
):
    keys = await customers.many(80_000, 12)
    campaign_id = await started(campaigns)
    held = HeldChannel()
    task = asyncio.create_task(broadcaster(campaigns, held, concurrency=4).run(campaign_id, PROMO))
    await held.wait_out(4)

    await kill(task)
    # Four more wait in the queue and more in the feeder's page: they never left pending.
    assert await campaigns.tally(campaign_id) == {S.SENDING: 4, S.PENDING: 8}
    resumed = open_channel()
    counts = await broadcaster(fresh(campaigns), resumed).run(campaign_id, PROMO)

    assert counts[S.UNKNOWN] == 4 and counts[S.SENT] == 8
    assert sorted(held.out + resumed.out) == sorted(key.chat_id for key in keys)  # once each
    assert await campaigns.tally(campaign_id) == {S.UNKNOWN: 4, S.SENT: 8}


async def test_a_row_reads_sending_during_its_request_and_its_outcome_right_after(
    campaigns, customers: Customers
):
    await customers.many(81_000, 4)
    campaign_id = await started(campaigns)
    seen: list[dict[str, int]] = []

    async def look(_chat: str) -> RecipientState:  # while the request is out
        seen.append(await campaigns.tally(campaign_id))
        return S.SENT

    channel = open_channel(answer=look)
    await broadcaster(campaigns, channel, concurrency=1).run(campaign_id, PROMO)

    assert seen == [
        {S.SENDING: 1, S.PENDING: 3},
        {S.SENT: 1, S.SENDING: 1, S.PENDING: 2},
        {S.SENT: 2, S.SENDING: 1, S.PENDING: 1},
        {S.SENT: 3, S.SENDING: 1},
    ]


async def test_a_429_puts_the_row_back_to_pending_so_a_kill_then_loses_nothing(
    campaigns, customers: Customers
):
    keys = await customers.many(82_000, 3)
    campaign_id = await started(campaigns)
    watched = Released(campaigns)

    async def too_many(_chat: str) -> RecipientState:
        raise RetryLater(3600)  # the sender now waits an hour: the kill comes first

    task = asyncio.create_task(
        broadcaster(watched, open_channel(answer=too_many), concurrency=1).run(campaign_id, PROMO)
    )
    await asyncio.wait_for(watched.seen.wait(), 5)
    await kill(task)

    assert await campaigns.tally(campaign_id) == {S.PENDING: 3}
    resumed = open_channel()
    counts = await broadcaster(fresh(campaigns), resumed).run(campaign_id, PROMO)
    assert sorted(resumed.out) == sorted(key.chat_id for key in keys)
    assert counts[S.SENT] == 3 and counts[S.UNKNOWN] == 0


async def test_a_send_still_refused_after_its_retries_is_failed(campaigns, customers: Customers):
    await customers.many(83_000, 2)
    campaign_id = await started(campaigns)

    async def too_many(_chat: str) -> RecipientState:
        raise RetryLater(0.0)

    channel = open_channel(answer=too_many)
    counts = await broadcaster(campaigns, channel, max_retries=2).run(campaign_id, PROMO)

    assert counts[S.FAILED] == 2 and counts["retried"] == 6  # three tries each
    assert len(channel.out) == 6
    assert await campaigns.tally(campaign_id) == {S.FAILED: 2}
    assert (await campaigns.get(campaign_id)).state == "done"


async def test_an_unexpected_error_is_unknown_and_never_sent_again(campaigns, customers: Customers):
    keys = await customers.many(84_000, 2)
    campaign_id = await started(campaigns)

    async def broken(chat: str) -> RecipientState:
        if chat == keys[0].chat_id:
            raise ConnectionResetError("the connection broke after the request left")
        return S.SENT

    channel = open_channel(answer=broken)
    await broadcaster(campaigns, channel).run(campaign_id, PROMO)
    again = open_channel()
    await broadcaster(fresh(campaigns), again).run(campaign_id, PROMO)

    assert await campaigns.tally(campaign_id) == {S.UNKNOWN: 1, S.SENT: 1}
    assert again.out == []
