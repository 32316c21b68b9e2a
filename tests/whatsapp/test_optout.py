"""BAJA / STOP stop promos and non-essential messages, ALTA / START resume; 21610 opts out."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.errors import NotDeliverableNow
from conversations.messages import Reply
from conversations.ports import Contact
from storage.customers import SqlContacts
from tests.fake_twilio import FakeTwilio
from tests.whatsapp.phone import Phone
from tests.whatsapp.test_journey import HOLA_TO_SUMMARY, pay

PROMO = Reply("Este finde, doble de megas en paquetes 🎉", essential=False)


def promos(phone: Phone) -> int:
    return sum(PROMO.text in body for body in phone.received())


async def contact(engine: AsyncEngine, phone: Phone) -> Contact:
    return await SqlContacts(engine).contact(phone.key)


@pytest.mark.parametrize(("stop", "resume"), [("BAJA", "ALTA"), ("stop", "Start")])
async def test_after_baja_no_promo_and_after_alta_promos_again(bot, phone: Phone, stop, resume):
    await phone.say("hola")

    stopped = await phone.say(stop)
    await bot.chat.messenger.send(phone.key, PROMO)
    after_stop = promos(phone)
    resumed = await phone.say(resume)
    await bot.chat.messenger.send(phone.key, PROMO)

    assert "ya no te enviaré promociones" in stopped[0]
    assert after_stop == 0
    assert "Volverás a recibir" in resumed[0]
    assert promos(phone) == 1
    assert not (await contact(bot.engine, phone)).opted_out


async def test_an_opted_out_customer_still_buys_and_is_told_the_outcome(bot, phone: Phone):
    await phone.say("BAJA")

    await phone.say(*HOLA_TO_SUMMARY, "Confirmar")
    await pay(bot, phone.last_link())

    assert (await contact(bot.engine, phone)).opted_out
    assert "Recarga exitosa" in phone.received()[-1]


async def test_twilio_21610_marks_the_customer_and_nothing_is_sent_until_they_write(
    bot, phone: Phone, twilio: FakeTwilio
):
    twilio.blocked.add(phone.address)  # the customer sent STOP to Twilio itself
    await phone.say("hola")
    marked = await contact(bot.engine, phone)

    with pytest.raises(NotDeliverableNow):
        await bot.chat.messenger.send(phone.key, Reply("Tu recarga está en camino"))
    await bot.chat.messenger.send(phone.key, PROMO)
    attempts_while_blocked = len(twilio.requests)
    twilio.blocked.discard(phone.address)  # they sent START to Twilio, then write to us
    resumed = await phone.say("ALTA")

    assert twilio.refusals == [21610] and attempts_while_blocked == 1
    assert marked.opted_out and marked.unreachable
    assert "Hola" in resumed[0]  # the answer held while they were blocked, first
    assert "Volverás a recibir" in resumed[-1]
    assert await contact(bot.engine, phone) == Contact(marked.last_inbound_at, False, False)
