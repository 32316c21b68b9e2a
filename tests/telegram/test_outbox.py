"""Replies and notices go through the outbox: a failed sendMessage is sent again within seconds.

The retries run on the bot's own timer (backoff from one second); the tests wait on the fake Bot
API's conditions, never sleep.
"""

from __future__ import annotations

import time

from bot.telegram_app import SEND_RETRIES
from tests.fake_telegram import BAD_GATEWAY, retry_after
from tests.telegram.user import TelegramUser

WITHIN = 5.0  # seconds


async def test_a_reply_refused_with_502_arrives_within_seconds_exactly_once(user, api):
    maria = user(7401)
    api.refuse("sendMessage", BAD_GATEWAY, chat_id="7401")

    replies = await maria.say("/ayuda")

    refused, delivered = [c for c in api.of("sendMessage") if c.params["chat_id"] == "7401"]
    assert not refused.ok and delivered.ok and delivered.at - refused.at < WITHIN
    assert len(replies) == 1 and "Te ayudo" in replies[0].params["text"]


async def test_a_timed_out_notice_arrives_within_seconds_of_the_bot_api_coming_back(
    telegram_settings, running, api
):
    settings = telegram_settings.model_copy(update={"telegram_timeout_seconds": 0.3})
    async with running(settings) as (app, services):
        maria = TelegramUser(app, services, api, 7402)
        link = await maria.to_payment_link()
        outage = api.outage(7402)
        await maria.pay(link)
        await services.worker.run_once()  # tops up; the notice's sendMessage times out
        await api.wait_for(lambda: api.held.count("7402") >= 2)  # and a retry's too

        outage.set()  # the Bot API is back
        back = time.perf_counter()
        notice = (await api.wait_sent(7402, len(api.sent(7402)) + 1, within=WITHIN))[-1]

    assert "Recarga exitosa" in notice.params["text"] and notice.at - back < WITHIN
    assert sum("Recarga exitosa" in text for text in api.texts(7402)) == 1


async def test_a_reply_still_refused_after_the_rate_limiters_retries_arrives_once(user, api):
    maria = user(7403)
    for _ in range(SEND_RETRIES + 1):  # the limiter's own retries, and one more
        api.refuse("sendMessage", retry_after(1), chat_id="7403")

    replies = await maria.say("/ayuda")

    calls = [c for c in api.of("sendMessage") if c.params["chat_id"] == "7403"]
    assert [c.ok for c in calls] == [False] * (SEND_RETRIES + 1) + [True]
    assert calls[-1].at - calls[-2].at >= 1.0  # the outbox honoured retry_after
    assert len(replies) == 1 and "Te ayudo" in replies[0].params["text"]
