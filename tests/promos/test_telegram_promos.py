"""Promos over the real Telegram wiring: the opt-in question, /promo for admins only, and a
customer's purchase answered promptly while a campaign is sending."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

import pytest
from sqlmodel import select

from bot.app import Overrides
from bot.promos import broadcaster, promo_channels
from conversations.broadcast import Promo
from conversations.model import Channel
from storage.campaigns import Audience, SqlCampaigns
from storage.db import make_sessionmaker
from storage.models import CustomerRow
from tests.promos.conftest import Customers
from tests.promos.limited_fakes import Window
from tests.telegram.conftest import ADMIN_ID
from tests.telegram.user import TelegramUser, buttons

PROMO = Promo("¡Doble de megas este fin de semana!")
TELEGRAM = Audience((Channel.TELEGRAM,))


@pytest.fixture
def window() -> Window:
    """Telegram's limits scaled: 60 messages/s in total; bursts to one chat are allowed here."""
    return Window(rate=60, per_chat=0.0)


def parts(bot):
    _, services = bot
    return services, SqlCampaigns(make_sessionmaker(services.engine)), Customers.of(services.engine)


@pytest.fixture
async def timed_bot(telegram_settings, running, clock):
    """The bot on a clock the test moves."""
    async with running(telegram_settings, Overrides(clock=clock)) as started:
        yield started


async def recharge(maria: TelegramUser) -> None:
    """A completed recharge, from /start to the top-up."""
    await maria.pay(await maria.to_payment_link())
    await maria.services.worker.run_once()


async def promo_times(services) -> tuple[datetime | None, datetime | None]:
    """The only customer's (asked about promos, opted in) times."""
    stmt = select(CustomerRow.promos_asked_at, CustomerRow.promos_opt_in_at)
    async with make_sessionmaker(services.engine)() as db:
        asked, opted_in = (await db.exec(stmt)).one()
    return asked, opted_in


async def drawn(campaigns: SqlCampaigns, audience: Audience) -> set[str]:
    """The chats a campaign for ``audience`` draws now."""
    campaign_id = await campaigns.create(PROMO, audience, created_by="test")
    await campaigns.start(campaign_id)
    return {r.key.chat_id for r in await campaigns.pending(campaign_id, after=0, limit=100)}


async def test_the_first_recharge_asks_once_about_promos_and_si_opts_in_at_that_time(
    timed_bot, api, clock
):
    app, services = timed_bot
    campaigns = SqlCampaigns(make_sessionmaker(services.engine), clock=clock)
    maria = TelegramUser(app, services, api, 1001)
    await recharge(maria)
    done = api.sent(1001)[-1]

    assert "Recarga exitosa" in done.params["text"] and "promociones" in done.params["text"]
    assert [b["callback_data"] for b in buttons(done)] == ["promos:si", "promos:no"]
    assert await promo_times(services) == (clock.now, None)  # asked, not yet answered
    clock.advance(minutes=7)  # she answers a while later: the yes is stored with its own time
    await maria.press("promos:si")
    assert (await promo_times(services))[1] == clock.now
    assert await campaigns.audience_size(TELEGRAM) == {"telegram": 1}
    clock.advance(days=3)
    await maria.say("/promos no")
    assert await promo_times(services) == (clock.now, None)
    assert await campaigns.audience_size(TELEGRAM) == {"telegram": 0}


async def test_audience_filters_read_the_customers_completed_recharges(timed_bot, api, clock):
    app, services = timed_bot
    campaigns = SqlCampaigns(make_sessionmaker(services.engine), clock=clock)
    maria, pedro = TelegramUser(app, services, api, 2001), TelegramUser(app, services, api, 2002)
    await recharge(maria)  # completed today
    await maria.press("promos:si")
    await pedro.to_payment_link()  # an order, never paid: not a recharge
    await pedro.say("/promos si")
    ana = await parts(timed_bot)[2].add(2003)
    clock.advance(days=10)

    inactive_30, inactive_7 = (Audience((Channel.TELEGRAM,), inactive_days=n) for n in (30, 7))
    assert await drawn(campaigns, inactive_30) == {"2002", ana.chat_id}  # maria recharged
    assert await drawn(campaigns, inactive_7) == {"2001", "2002", ana.chat_id}
    recharged = Audience((Channel.TELEGRAM,), recharged_only=True)
    assert await drawn(campaigns, recharged) == {"2001"}


async def test_a_customer_buying_during_a_campaign_gets_each_reply_within_2_seconds(
    bot, user, api, telegram_settings, report, record_property
):
    services, campaigns, customers = parts(bot)
    await customers.many(60_000, 300)
    campaign_id = await campaigns.create(PROMO, TELEGRAM, created_by="test")
    await campaigns.start(campaign_id)
    # Promos paced at 40/s of the fake's 60/s: the headroom is the customers' replies'.
    settings = telegram_settings.model_copy(update={"promo_telegram_per_second": 40.0})
    maria = user(1001)

    async with promo_channels(settings, customers.contacts, services.chat.clock) as channels:
        sending = asyncio.create_task(
            broadcaster(settings, campaigns, channels).run(campaign_id, PROMO)
        )
        await asyncio.sleep(0.5)  # the campaign is under way
        link = await maria.to_payment_link()
        started = time.perf_counter()
        await maria.pay(link)
        await services.worker.run_once()
        maria.latencies.append(api.sent(1001)[-1].at - started)
        still_sending = not sending.done()
        await sending

    latencies = sorted(maria.latencies)
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    report(
        f"replies while a campaign sends: p95 {p95 * 1000:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms over {len(latencies)} replies"
    )
    record_property("reply_p95_ms", round(p95 * 1000))
    assert still_sending, "the purchase must happen while the campaign sends"
    assert "Recarga exitosa" in api.texts(1001)[-1]
    assert p95 < 2.0 and latencies[-1] < 2.0
    assert await campaigns.tally(campaign_id) == {"sent": 300}


async def test_a_non_admin_promo_is_refused_logged_and_creates_nothing(bot, user, api, caplog):
    _, campaigns, _ = parts(bot)
    caplog.set_level(logging.WARNING, logger="bot.promo_admin")

    (reply,) = await user(5555).say("/promo ¡Gana megas!")
    await user(5555).press("promo:send:1")

    assert "solo para administradores" in reply.params["text"]
    assert [r.getMessage() for r in caplog.records] == [
        "refused /promo from user telegram:…5555",
        "refused /promo_send from user telegram:…5555",
    ]
    assert await campaigns.latest() == []


async def test_an_admin_previews_then_confirms_once_and_the_promo_goes_out(bot, user, api):
    _, campaigns, customers = parts(bot)
    keys = await customers.many(70_000, 3)
    admin = user(ADMIN_ID)

    (preview,) = await admin.say("/promo ¡Doble de megas!")
    send, cancel = (b["callback_data"] for b in buttons(preview))
    await admin.press(send)
    (again,) = await admin.press(send)

    assert "¡Doble de megas!" in preview.params["text"] and "telegram: 3" in preview.params["text"]
    assert send == "promo:send:1" and cancel == "promo:cancel:1"
    assert "ya se envió" in again.params["text"]
    for key in keys:
        (promo,) = await api.wait_sent(key.chat_id, 1)
        assert promo.params["text"] == "¡Doble de megas!"
    for _ in range(100):  # the campaign runs in the background: wait for its last write
        if (await campaigns.get(1)).state == "done":
            break
        await asyncio.sleep(0.05)
    assert (await campaigns.get(1)).state == "done"
    assert await campaigns.tally(1) == {"sent": 3}
