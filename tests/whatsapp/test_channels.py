"""One person on Telegram and on WhatsApp: two customers, two conversations, two sets of lines."""

from __future__ import annotations

from conversations.machine import Text
from conversations.model import Channel, ChatKey
from conversations.session import Step
from tests.fake_twilio import FakeTwilio
from tests.whatsapp.phone import Phone

SAME_PERSON_ON_TELEGRAM = ChatKey(Channel.TELEGRAM, "911222333")


async def test_telegram_and_whatsapp_conversations_and_saved_lines_are_independent(
    bot, phone: Phone, twilio: FakeTwilio
):
    await phone.say("hola", "Acepto", "987654321", "María Quispe", "DNI", "45678912")
    for text in ("hola", "Acepto", "912345678"):
        await bot.chat.handle(SAME_PERSON_ON_TELEGRAM, Text(text))
    whatsapp_next = await phone.say("Recarga de saldo")

    on_whatsapp = await bot.store.load(phone.key)
    on_telegram = await bot.store.load(SAME_PERSON_ON_TELEGRAM)
    assert [line.msisdn for line in on_whatsapp.profile.lines] == ["987654321"]
    assert on_telegram.profile.lines == ()
    assert on_whatsapp.step is Step.CHOOSE_AMOUNT and "Elige el monto" in whatsapp_next[0]
    assert on_telegram.step is Step.ASK_NAME
    assert on_telegram.draft.msisdn == "912345678"
    assert len(phone.received()) == 7 and {m["To"] for m in twilio.messages} == {phone.address}
