"""Telegram's refusals (429 flood control, 403 blocked) and the long-polling mode."""

from __future__ import annotations

import logging

import pytest

from bot.app import Overrides
from conversations.errors import NotDeliverableNow
from conversations.messages import Reply
from conversations.model import Channel, ChatKey
from tests.fake_telegram import BLOCKED, retry_after
from tests.fakes import MovableClock
from tests.telegram.user import TelegramUser, message_update


async def test_a_429_is_waited_out_and_the_reply_delivered_once(bot, user, api):
    maria = user(7001)
    api.refuse("sendMessage", retry_after(1), chat_id="7001")

    replies = await maria.say("/ayuda")

    refused, delivered = [c for c in api.of("sendMessage") if c.params["chat_id"] == "7001"]
    assert not refused.ok and delivered.ok
    assert delivered.at - refused.at >= 1.0  # nothing sent before retry_after elapsed
    assert len(replies) == 1 and "Te ayudo" in replies[0].params["text"]


async def test_a_403_marks_the_chat_unreachable_and_the_order_still_completes(bot, user, api):
    _, services = bot
    maria, key = user(7101), ChatKey(Channel.TELEGRAM, "7101")
    link = await maria.to_payment_link()
    api.refuse("sendMessage", BLOCKED, chat_id="7101")

    await maria.pay(link)
    await services.worker.run_once()
    await services.worker.run_once()
    after_block = len(api.of("sendMessage"))
    with pytest.raises(NotDeliverableNow):  # the chat is known to be blocked: nothing is tried
        await services.chat.messenger.send(key, Reply("¿Sigues ahí?"))

    orders = await services.orders.recent(key, limit=5)
    assert [o.state.value for o in orders] == ["completed"]
    assert (await services.orders.get(orders[0].id)) is not None
    assert len(api.of("sendMessage")) == after_block  # no further sends to a blocked chat
    assert await maria.say("/ayuda")  # writing again makes the chat reachable


async def test_a_blocked_chat_is_told_its_pending_result_first_once_it_writes_again(
    telegram_settings, running, api
):
    clock = MovableClock()
    async with running(telegram_settings, Overrides(clock=clock)) as (app, services):
        maria = TelegramUser(app, services, api, 7301)
        link = await maria.to_payment_link()
        api.refuse("sendMessage", BLOCKED, chat_id="7301")
        before_paying = len(api.of("sendMessage"))

        await maria.pay(link)
        await services.worker.run_once()  # tops up; the notice is refused with 403
        clock.advance(minutes=6)  # a pass later: the notice waits for the customer, untried
        await services.worker.run_once()
        calls_while_blocked = len(api.of("sendMessage")) - before_paying
        replies = await maria.say("hola", replies=2)  # unblocked, the customer writes again
        clock.advance(minutes=6)
        await services.worker.run_once()

    assert calls_while_blocked == 1  # the refused notice; nothing more reached Telegram
    assert "Recarga exitosa" in replies[0].params["text"]  # what they paid for, first
    assert "Hola de nuevo" in replies[1].params["text"]
    assert sum("Recarga exitosa" in text for text in api.texts(7301)) == 1


async def test_a_reply_refused_with_403_is_no_failed_update_and_the_next_message_is_answered(
    bot, user, api, caplog
):
    maria = user(7401)
    api.refuse("sendMessage", BLOCKED, chat_id="7401")

    await maria.post(message_update(7401, "/ayuda"))
    await api.wait_for(lambda: len(api.of("sendMessage")) == 1)
    replies = await maria.say("/ayuda")  # queued behind the refused one, so handled after it

    assert "Te ayudo" in replies[0].params["text"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_polling_mode_takes_updates_from_get_updates(telegram_settings, running, api):
    polling = telegram_settings.model_copy(update={"public_base_url": None})

    async with running(polling):
        await api.post_update(message_update(7201, "/start", update_id=1))
        await api.post_update(message_update(7201, "/ayuda", update_id=2))
        texts = [c.params["text"] for c in await api.wait_sent(7201, 2)]

    assert api.of("deleteWebhook") and not api.of("setWebhook")
    assert "Hola" in texts[0] and "Te ayudo" in texts[1]
