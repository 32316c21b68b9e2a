"""Campaigns against the Telegram fake that enforces the limits: pace, 429s, crashes, audience."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from telegram import Bot

from adapters.aiohttp_request import AiohttpRequest
from adapters.promo_channels import TelegramPromos
from bench.promo_bench import chats_in
from conversations.broadcast import Broadcaster, Promo, RateLimiter, RecipientState
from conversations.model import Channel
from storage.campaigns import Audience, SqlCampaigns
from storage.customers import SqlContacts
from tests.fake_telegram import BLOCKED
from tests.promos.conftest import NOW, Customers
from tests.promos.limited_fakes import LimitedBotApi

PROMO = Promo("¡Doble de megas este fin de semana! Recarga S/ 10 y llévate 2 GB.")
TELEGRAM = Audience((Channel.TELEGRAM,))
S = RecipientState


@asynccontextmanager
async def sender(
    fake_api: tuple[LimitedBotApi, str],
    campaigns: SqlCampaigns,
    contacts: SqlContacts,
    rate: float,
    **knobs: int,
) -> AsyncIterator[Broadcaster]:
    """A broadcaster over a promo Bot of its own, paced at ``rate`` and 1 s per chat."""
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    bot = Bot("123456:TEST-token", base_url=fake_api[1], request=AiohttpRequest(64))
    async with bot:
        channel = TelegramPromos(bot, contacts, lambda: NOW)
        limiter = RateLimiter(rate, per_chat=1.0)
        yield Broadcaster(
            campaigns, {Channel.TELEGRAM: channel}, {Channel.TELEGRAM: limiter}, **knobs
        )


async def started(campaigns: SqlCampaigns, audience: Audience = TELEGRAM) -> int:
    campaign_id = await campaigns.create(PROMO, audience, created_by="test")
    assert await campaigns.start(campaign_id)
    return campaign_id


async def test_300_recipients_at_the_limit_each_once_at_90_percent_of_the_rate(
    paced_api, campaigns, customers: Customers, report
):
    keys = await customers.many(10_000, 300)
    api = paced_api[0]
    campaign_id = await started(campaigns)

    # Paced 5% under the fake's limit of 100/s: network jitter must not push it over.
    async with sender(paced_api, campaigns, customers.contacts, rate=95) as broadcaster:
        counts = await broadcaster.run(campaign_id, PROMO)

    assert api.per_chat == {key.chat_id: 1 for key in keys}  # nobody twice, nobody lost
    assert counts[S.SENT] == 300 and counts["retried"] == api.too_many
    rate = api.achieved_rate()
    report(f"300 recipients paced at 95/s, limit 100/s: {rate:.0f} msg/s, {api.too_many} 429s")
    assert rate >= 0.9 * 100, f"{rate:.0f} msg/s, limit 100, {api.too_many} 429s"
    assert await campaigns.tally(campaign_id) == {S.SENT.value: 300}
    assert (await campaigns.get(campaign_id)).state == "done"


async def test_every_429_past_the_limit_is_retried_until_delivered(
    paced_api, campaigns, customers: Customers
):
    keys = await customers.many(20_000, 120)
    api = paced_api[0]
    campaign_id = await started(campaigns)

    async with sender(
        paced_api, campaigns, customers.contacts, rate=400, max_retries=20
    ) as broadcaster:
        counts = await broadcaster.run(campaign_id, PROMO)  # four times the fake's limit

    assert api.too_many > 0
    assert counts["retried"] == api.too_many
    assert api.per_chat == {key.chat_id: 1 for key in keys}
    assert counts[S.SENT] == 120


async def killed_after(broadcaster: Broadcaster, campaign_id: int, outcomes: int) -> None:
    """Run until ``outcomes`` rows have one, then stop dead, other sends mid-flight (a SIGKILL)."""
    task = asyncio.create_task(broadcaster.run(campaign_id, PROMO))
    seen = itertools.count(1)

    def count(_state: RecipientState) -> None:
        if next(seen) == outcomes:
            task.cancel()

    broadcaster.on_outcome = count
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("seed", [1, 2])
async def test_killed_five_times_and_resumed_each_gets_it_once_and_unknown_only_if_in_flight(
    paced_api, campaigns, customers: Customers, seed: int, report
):
    keys = await customers.many(30_000, 300)
    api = paced_api[0]
    api.flood_every, api.flood_wait = 40, 0.05  # flood control too: some kills come mid-retry
    campaign_id = await started(campaigns)
    chance = random.Random(seed)
    in_flight = []

    for _ in range(5):
        crashed = SqlCampaigns(campaigns.sessions, clock=campaigns.clock)  # a new process
        async with sender(paced_api, crashed, customers.contacts, rate=100) as broadcaster:
            await killed_after(broadcaster, campaign_id, outcomes=chance.randint(1, 50))
        in_flight.append((await campaigns.tally(campaign_id)).get(S.SENDING.value, 0))
    async with sender(paced_api, campaigns, customers.contacts, rate=100) as broadcaster:
        await broadcaster.run(campaign_id, PROMO)

    unknown = await chats_in(campaigns.sessions, campaign_id, S.UNKNOWN)
    report(
        f"killed 5× (seed {seed}): rows in flight at each kill {in_flight}, unknown {len(unknown)}"
    )
    assert all(rows <= broadcaster.concurrency for rows in in_flight)
    assert len(unknown) == sum(in_flight)  # unknown: only the requests out at a kill
    tally = Counter(await campaigns.tally(campaign_id))
    assert tally == Counter({S.SENT: 300 - len(unknown), S.UNKNOWN: len(unknown)})
    reachable = [key.chat_id for key in keys if key.chat_id not in unknown]
    assert all(api.per_chat[chat] == 1 for chat in reachable)  # nobody lost
    assert max(api.per_chat.values()) == 1  # nobody twice
    assert api.too_many > 0 and api.refused <= unknown  # a 429 not retried: cut off by a kill
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

    async with sender(fake_api, campaigns, customers.contacts, rate=100) as broadcaster:
        counts = await broadcaster.run(campaign_id, PROMO)

    assert set(api.per_chat) == {key.chat_id for key in yes}
    assert counts[S.SENT] == 5 and counts[S.BLOCKED] == 1 and counts[S.OPTED_OUT] == 1
    assert (await customers.contacts.contact(blocks_now)).unreachable
    assert await campaigns.audience_size(TELEGRAM) == {"telegram": 5}


async def test_a_send_telegram_refuses_is_failed_and_not_sent_again(
    fake_api, campaigns, customers: Customers
):
    api = fake_api[0]
    keys = await customers.many(45_000, 3)
    refused = keys[1].chat_id
    not_found = {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
    api.refuse("sendMessage", not_found, chat_id=refused)
    campaign_id = await started(campaigns)

    async with sender(fake_api, campaigns, customers.contacts, rate=100) as broadcaster:
        counts = await broadcaster.run(campaign_id, PROMO)

    assert (counts[S.SENT], counts[S.FAILED], counts["retried"]) == (2, 1, 0)
    assert [str(c.params["chat_id"]) for c in api.of("sendMessage")].count(refused) == 1
    assert await campaigns.tally(campaign_id) == {S.SENT: 2, S.FAILED: 1}


async def test_a_promo_with_an_image_goes_as_a_photo_with_the_text_as_its_caption(
    fake_api, campaigns, customers: Customers
):
    api = fake_api[0]
    keys = await customers.many(46_000, 2)
    promo = Promo(PROMO.text, image_url="https://cdn.recargabot.pe/promos/2x-megas.jpg")
    campaign_id = await campaigns.create(promo, TELEGRAM, created_by="test")
    await campaigns.start(campaign_id)
    stored = (await campaigns.get(campaign_id)).promo

    async with sender(fake_api, campaigns, customers.contacts, rate=100) as broadcaster:
        await broadcaster.run(campaign_id, stored)

    photos = api.of("sendPhoto")
    assert sorted(str(c.params["chat_id"]) for c in photos) == sorted(k.chat_id for k in keys)
    assert {(c.params["photo"], c.params["caption"]) for c in photos} == {
        (promo.image_url, promo.text)
    }
    assert api.of("sendMessage") == []
    assert await campaigns.tally(campaign_id) == {S.SENT: 2}
