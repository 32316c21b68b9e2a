"""A purchase over WhatsApp through the real twilio Client, every reply counted at the fake."""

from __future__ import annotations

import pytest

from bot.app import Services
from tests.fake_twilio import FakeTwilio
from tests.service.chat import TEST_CARD
from tests.whatsapp.phone import SENDER, Phone

HOLA_TO_SUMMARY = ("hola", "1", "+51 987-654-321", "María Quispe", "DNI", "45678912", "1", "S/ 10")


async def pay(bot: Services, link: str) -> None:
    """Pay the link on the sandbox gateway, then let the worker top up and tell the customer."""
    session_id = link.rsplit("/", 1)[-1]
    await bot.payments.pay(session_id, number=TEST_CARD, expiry="12/30", cvc="123", name="MARIA Q")
    await bot.worker.run_once()


async def test_full_purchase_from_hola_to_recarga_exitosa(bot, phone: Phone, twilio: FakeTwilio):
    replies = await phone.say(*HOLA_TO_SUMMARY, "Confirmar")
    await pay(bot, phone.last_link())

    received = phone.received()
    assert "1. Acepto\n2. No acepto" in replies[0]
    assert "S/ 10.00" in replies[-2] and "987 654 321" in replies[-2]
    assert "Pagar S/ 10.00:\nhttps://bot.test/sandbox/checkout/" in replies[-1]
    assert "Recarga exitosa" in received[-1] and "S/ 10.00" in received[-1]
    assert len(replies) == 9  # one reply to each of the 9 messages
    assert len(received) == len(twilio.requests) == 10  # and the confirmation, nothing refused
    assert {m["From"] for m in twilio.messages} == {SENDER}
    assert bot.topups.balances == {"987654321": 1000}


@pytest.mark.parametrize(
    ("keyword", "expected"),
    [
        ("ayuda", "Te ayudo a recargar"),
        ("cancelar", "cancelé la operación"),
        ("menu", "¿Qué número Claro quieres recargar?"),
    ],
)
async def test_keywords_work_like_the_telegram_commands(phone: Phone, keyword, expected):
    await phone.say("hola", "1", "+51 987-654-321")

    replies = await phone.say(keyword)

    assert expected in replies[0]


async def test_mis_recargas_lists_the_customers_orders(bot, phone: Phone):
    await phone.say(*HOLA_TO_SUMMARY, "Confirmar")
    await pay(bot, phone.last_link())

    replies = await phone.say("Mis recargas")

    assert replies[0].startswith("Tus últimas recargas:")
    assert "987 654 321" in replies[0] and "S/ 10.00" in replies[0]


async def test_a_twilio_outage_on_the_confirmation_is_retried_and_delivered_once(
    bot, phone: Phone, twilio: FakeTwilio, clock
):
    await phone.say(*HOLA_TO_SUMMARY, "Confirmar")
    twilio.outages = 1

    await pay(bot, phone.last_link())
    missed = "Recarga exitosa" in phone.received()[-1]
    clock.advance(minutes=6)  # past the resend's backoff
    await bot.worker.run_once()
    await bot.worker.run_once()

    assert not missed and twilio.refusals == [20500]
    assert sum("Recarga exitosa" in body for body in phone.received()) == 1
