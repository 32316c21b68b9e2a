"""A restart mid-conversation loses nothing, and a payment settled later reaches the chat."""

from __future__ import annotations

import json

from bot.app import Overrides
from conversations.model import Channel, ChatKey
from storage.pending_updates import SqlPendingUpdates
from tests.telegram.user import TelegramUser, message_update


async def test_restart_mid_conversation_then_late_payment_reaches_the_chat(
    telegram_settings, running, api
):
    async with running(telegram_settings) as (app, services):
        maria = TelegramUser(app, services, api, 8001)
        await maria.say("/start")
        await maria.press("accept")
        await maria.say("987654321")
        await maria.say("María Quispe")

    async with running(telegram_settings) as (app, services):
        maria = TelegramUser(app, services, api, 8001)
        await maria.press("doc:dni")
        await maria.say("45678912")
        await maria.press("kind:saldo")
        summary = (await maria.press("amount:10"))[-1].params["text"]
        link = (await maria.press("confirm"))[-1]

    async with running(telegram_settings) as (app, services):
        await TelegramUser(app, services, api, 8001).pay(link)
        await services.worker.run_once()

    assert "987 654 321" in summary and "María Quispe (DNI 45678912)" in summary
    assert "Recarga exitosa" in api.texts(8001)[-1]
    assert len(api.of("setWebhook")) == 3


async def test_updates_accepted_before_a_crash_are_handled_in_order_at_the_next_start(
    telegram_settings, running, api
):
    """An update that got its 200 is kept in the database, not in memory: a crash keeps it."""
    key = ChatKey(Channel.TELEGRAM, "8101")
    async with running(telegram_settings) as (_, services):  # dies before handling these
        kept = SqlPendingUpdates(services.engine)
        for update in (message_update(8101, "/ayuda", 71), message_update(8101, "/start", 70)):
            await kept.add(key, update["update_id"], json.dumps(update), at=services.chat.clock())

    async with running(telegram_settings):
        await api.wait_sent(8101, 3)  # the greeting; help, then the pending question again
    left = await kept.chats()  # stopping waits for the handling under way

    texts = api.texts(8101)
    assert len(texts) == 3 and "Hola" in texts[0] and "Te ayudo" in texts[1]  # by update_id
    assert left == []


async def test_updates_a_replica_kept_and_died_with_are_taken_up_by_the_next_pass(
    telegram_settings, running, api, clock
):
    """Another replica got the 200 out, then died before handling: this one's worker takes it."""
    key = ChatKey(Channel.TELEGRAM, "8201")
    async with running(telegram_settings, Overrides(clock=clock)) as (_, services):
        kept = SqlPendingUpdates(services.engine)  # as the other replica kept it
        await kept.add(key, 90, json.dumps(message_update(8201, "/start", 90)), at=clock())
        await services.worker.run_once()
        still = await kept.chats()  # kept a moment ago: its replica may be handling it
        clock.advance(seconds=31)
        await services.worker.run_once()
        await api.wait_sent(8201, 1)

    assert still == [key] and "Hola" in api.texts(8201)[0]
