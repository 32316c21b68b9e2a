"""Campaigns against the Telegram fake that enforces the limits: pace, 429s, crashes, audience."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from telegram import Bot

from adapters.aiohttp_request import AiohttpRequest
from adapters.promo_channels import TelegramPromos
from conversations.broadcast import Broadcaster, Promo, RateLimiter, RecipientState
from conversations.model import Channel
from storage.campaigns import Audience, SqlCampaigns
from storage.repositories import SqlContacts
from tests.fake_telegram import BLOCKED
from tests.promos.conftest import NOW, Customers
from tests.promos.limited_fakes import LimitedBotApi

PROMO = Promo("¡Doble de megas este fin de semana! Recarga S/ 10 y llévate 2 GB.")
TELEGRAM = Audience((Channel.TELEGRAM,))
S = RecipientState


@asynccontextmanager
async def sender(
    fake_api: tuple[LimitedBotApi, str], campaigns: SqlCampaigns, rate: float, **knobs: int
) -> AsyncIterator[Broadcaster]:
    """A broadcaster over a promo Bot of its own, paced at ``rate`` and 1 s per chat."""
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    bot = Bot("123456:TEST-token", base_url=fake_api[1], request=AiohttpRequest(64))
    async with bot:
        channel = TelegramPromos(bot, SqlContacts(campaigns.sessions), lambda: NOW)
        limiter = RateLimiter(rate, per_chat=1.0)
        yield Broadcaster(
            campaigns, {Channel.TELEGRAM: channel}, {Channel.TELEGRAM: limiter}, **knobs
        )


async def started(campaigns: SqlCampaigns, audience: Audience = TELEGRAM) -> int:
    campaign_id = await campaigns.create(PROMO, audience, created_by="test")
    assert await campaigns.start(campaign_id)
    return campaign_id


async def test_300_recipients_at_the_limit_each_once_at_90_percent_of_the_rate(
    paced_api, campaigns, customers: Customers
):
    keys = await customers.many(10_000, 300)
    api = paced_api[0]
    campaign_id = await started(campaigns)

    # Paced 5% under the fake's limit of 100/s: network jitter must not push it over.
    async with sender(paced_api, campaigns, rate=95) as broadcaster:
        counts = await broadcaster.run(campaign_id, PROMO)

    assert api.per_chat == {key.chat_id: 1 for key in keys}  # nobody twice, nobody lost
    assert counts[S.SENT] == 300 and counts["retried"] == api.too_many
    rate = api.achieved_rate()
    assert rate >= 0.9 * 100, f"{rate:.0f} msg/s, limit 100, {api.too_many} 429s"
    assert await campaigns.tally(campaign_id) == {S.SENT.value: 300}
    assert (await campaigns.get(campaign_id)).state == "done"


async def test_every_429_past_the_limit_is_retried_until_delivered(
    paced_api, campaigns, customers: Customers
):
    keys = await customers.many(20_000, 120)
    api = paced_api[0]
    campaign_id = await started(campaigns)

    async with sender(paced_api, campaigns, rate=400, max_retries=20) as broadcaster:
        counts = await broadcaster.run(campaign_id, PROMO)  # four times the fake's limit

    assert api.too_many > 0
    assert counts["retried"] == api.too_many
    assert api.per_chat == {key.chat_id: 1 for key in keys}
    assert counts[S.SENT] == 120


@pytest.mark.parametrize("seed", [1, 2])
async def test_killed_five_times_and_resumed_nobody_gets_it_twice_and_all_get_it(
    paced_api, campaigns, customers: Customers, seed: int
):
    keys = await customers.many(30_000, 300)
    api = paced_api[0]
    campaign_id = await started(campaigns)
    chance = random.Random(seed)

    for _ in range(5):  # a crash: the task dies mid-flight, with no clean-up of any kind
        crashed = SqlCampaigns(campaigns.sessions, clock=campaigns.clock)
        async with sender(paced_api, crashed, rate=100) as broadcaster:
            task = asyncio.create_task(broadcaster.run(campaign_id, PROMO))
            await asyncio.sleep(chance.uniform(0.05, 0.5))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    async with sender(paced_api, campaigns, rate=100) as broadcaster:
        await broadcaster.run(campaign_id, PROMO)

    tally = await campaigns.tally(campaign_id)
    delivered = {key.chat_id for key in keys if api.per_chat[key.chat_id]}
    assert max(api.per_chat.values()) == 1  # at most once, whatever the crashes
    assert set(tally) <= {S.SENT.value, S.UNKNOWN.value}  # nothing left pending or sending
    # Only a send in flight at a crash can be unknown; everyone else got it.
    assert tally[S.SENT.value] + tally.get(S.UNKNOWN.value, 0) == 300
    assert len(delivered) >= tally[S.SENT.value]
    assert tally.get(S.UNKNOWN.value, 0) <= 5 * 3 * 16  # claimed batches in flight, per crash
    assert (await campaigns.get(campaign_id)).state == "done"


async def test_opted_out_blocked_and_never_asked_customers_get_nothing(
    fake_api, campaigns, customers: Customers
):
    api = fake_api[0]
    yes = await customers.many(40_000, 5)
    await customers.add(40_100, opt_in=False)  # said no
    await customers.add(40_101, opt_in=None)  # never asked
    baja = await customers.add(40_102)
    await customers.contacts.mark(baja, at=NOW, opted_out=True, promos=False)
    blocked_before = await customers.add(40_103)
    await customers.contacts.mark(blocked_before, at=NOW, unreachable=True)
    blocks_now = await customers.add(40_104)  # blocked the bot: Telegram answers 403
    api.refuse("sendMessage", BLOCKED, chat_id=blocks_now.chat_id)
    changes_mind = await customers.add(40_105)
    await customers.add(40_106, consent=False)  # said /promos si but never accepted the notice
    campaign_id = await started(campaigns)
    await customers.store.record_promos(changes_mind, opt_in=False, at=NOW)  # after the draw

    async with sender(fake_api, campaigns, rate=100) as broadcaster:
        counts = await broadcaster.run(campaign_id, PROMO)

    assert set(api.per_chat) == {key.chat_id for key in yes}
    assert counts[S.SENT] == 5 and counts[S.BLOCKED] == 1 and counts[S.OPTED_OUT] == 1
    assert (await customers.contacts.contact(blocks_now)).unreachable
    assert await campaigns.audience_size(TELEGRAM) == {"telegram": 5}


async def test_inactive_days_keeps_only_lines_without_a_recent_recharge(campaigns, customers):
    await customers.many(50_000, 3)

    inactive = Audience((Channel.TELEGRAM,), inactive_days=30)
    recharged = Audience((Channel.TELEGRAM,), recharged_only=True)

    assert await campaigns.audience_size(inactive) == {"telegram": 3}  # no order at all
    assert await campaigns.audience_size(recharged) == {"telegram": 0}
