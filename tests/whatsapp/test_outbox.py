"""Replies and notices go through the outbox: a refused send is sent again within seconds, once.

The retries run on the bot's own timer (backoff from one second); the tests wait on the fake
Twilio's condition, never sleep.
"""

from __future__ import annotations

import time

from bot.app import Services
from conversations.messages import opted_out
from tests.fake_twilio import FakeTwilio
from tests.service.chat import TEST_CARD
from tests.whatsapp.phone import Phone
from tests.whatsapp.test_journey import HOLA_TO_SUMMARY

WITHIN = 5.0  # seconds


async def test_a_reply_twilio_answers_500_arrives_within_seconds_exactly_once(
    phone: Phone, twilio: FakeTwilio
):
    twilio.outages = 1

    started = time.perf_counter()
    await phone.send(phone.form("hola"))
    await twilio.wait_for(lambda: len(phone.received()) == 1, within=WITHIN)
    took = time.perf_counter() - started

    assert twilio.refusals == [20500] and len(twilio.requests) == 2
    assert "Acepto" in phone.received()[0] and took < WITHIN


async def test_a_notice_twilio_answers_500_arrives_within_seconds_exactly_once(
    bot: Services, phone: Phone, twilio: FakeTwilio
):
    await phone.say(*HOLA_TO_SUMMARY, "Confirmar")
    session_id = phone.last_link().rsplit("/", 1)[-1]
    before = len(phone.received())
    twilio.outages = 1  # the next request, the notice's first attempt

    started = time.perf_counter()
    await bot.payments.pay(session_id, number=TEST_CARD, expiry="12/30", cvc="123", name="M Q")
    await bot.worker.run_once()
    await twilio.wait_for(lambda: len(phone.received()) > before, within=WITHIN)
    took = time.perf_counter() - started
    await bot.worker.run_once()  # a later pass sends nothing again

    late = phone.received()[before:]
    assert twilio.refusals == [20500]
    assert len(late) == 1 and "Recarga exitosa" in late[0] and took < WITHIN


async def test_the_answer_to_baja_twilio_answers_500_arrives_within_seconds_exactly_once(
    phone: Phone, twilio: FakeTwilio
):
    await phone.say("hola")
    twilio.outages = 1

    started = time.perf_counter()
    await phone.send(phone.form("BAJA"))
    await twilio.wait_for(lambda: len(phone.received()) == 2, within=WITHIN)
    took = time.perf_counter() - started

    assert twilio.refusals == [20500] and took < WITHIN
    assert phone.received()[1] == opted_out().text
