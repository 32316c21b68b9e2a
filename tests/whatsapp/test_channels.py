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
    for text in ("hola", "Acepto", "912345678", "Ana Díaz", "DNI", "87654321", "/cancelar"):
        await bot.chat.handle(SAME_PERSON_ON_TELEGRAM, Text(text))
    whatsapp_next = await phone.say("Recarga de saldo")
    await bot.chat.handle(SAME_PERSON_ON_TELEGRAM, Text("hola"))
    whatsapp_greeting = (await phone.say("/cancelar", "hola"))[-1]

    on_whatsapp = await bot.store.load(phone.key)
    on_telegram = await bot.store.load(SAME_PERSON_ON_TELEGRAM)
    assert [line.owner_name for line in on_whatsapp.profile.lines] == ["María Quispe"]
    assert [line.owner_name for line in on_telegram.profile.lines] == ["Ana Díaz"]
    assert "¿De cuánto es la recarga?" in whatsapp_next[0]
    assert "987 654 321" in whatsapp_greeting and "912" not in whatsapp_greeting
    assert on_telegram.step is Step.PICK_LINE
    assert {m["To"] for m in twilio.messages} == {phone.address}  # Telegram's replies stay there
