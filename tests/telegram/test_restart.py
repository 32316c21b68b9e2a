"""A restart mid-conversation loses nothing, and a payment settled later reaches the chat."""

from __future__ import annotations

from tests.telegram.user import TelegramUser


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
