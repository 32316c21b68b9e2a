"""The 24-hour window: never free-form outside it; the template, or wait for the customer."""

from __future__ import annotations

import json

import pytest

from adapters.twilio_messenger import NOTICE_MAX
from bot.app import Services
from conversations.messages import Option, Reply
from tests.fake_twilio import FakeTwilio, variables
from tests.fakes import MovableClock
from tests.service.chat import TEST_CARD
from tests.whatsapp.conftest import TEMPLATE_SID
from tests.whatsapp.phone import Phone
from tests.whatsapp.test_journey import HOLA_TO_SUMMARY


async def paid_then_topped_up_a_day_later(bot: Services, phone: Phone, clock: MovableClock):
    """Pay now; the paid webhook never arrives (our endpoint was down), so the top-up (and the
    confirmation) only happens 25 hours later, when a worker pass finds the paid session."""
    await phone.say(*HOLA_TO_SUMMARY, "Confirmar")
    session_id = phone.last_link().rsplit("/", 1)[-1]
    deliver = bot.payments._deliver

    async def endpoint_down(payload: bytes, signature: str) -> int:
        return 503

    bot.payments._deliver = endpoint_down
    try:
        await bot.payments.pay(session_id, number=TEST_CARD, expiry="12/30", cvc="123", name="M Q")
    finally:
        bot.payments._deliver = deliver
    clock.advance(hours=25)
    await bot.worker.run_once()


async def test_outside_the_window_without_template_nothing_is_sent_until_the_customer_writes(
    bot, phone: Phone, twilio: FakeTwilio, clock: MovableClock
):
    await paid_then_topped_up_a_day_later(bot, phone, clock)
    sent_late = len(twilio.requests) - 9

    clock.advance(hours=1)
    replies = await phone.say("hola")
    clock.advance(minutes=6)
    await bot.worker.run_once()

    assert sent_late == 0 and twilio.refusals == []
    assert "Recarga exitosa" in replies[0]  # what they paid for first, then the answer
    assert "¡Hola de nuevo!" in replies[1]
    assert sum("Recarga exitosa" in body for body in phone.received()) == 1


@pytest.mark.parametrize("template_sid", [TEMPLATE_SID])
async def test_outside_the_window_the_approved_template_carries_the_notice(
    bot, phone: Phone, twilio: FakeTwilio, clock: MovableClock
):
    await paid_then_topped_up_a_day_later(bot, phone, clock)

    late = twilio.to(phone.address)[9:]
    assert len(late) == 1 and "Body" not in late[0]
    assert late[0]["ContentSid"] == TEMPLATE_SID
    assert "Recarga exitosa" in json.loads(late[0]["ContentVariables"])["1"]
    assert twilio.refusals == []


@pytest.mark.parametrize("template_sid", [TEMPLATE_SID])
async def test_the_notice_in_the_template_is_one_line_and_capped_as_whatsapp_requires(
    bot, phone: Phone, twilio: FakeTwilio, clock: MovableClock
):
    await phone.say("hola")
    clock.advance(hours=25)
    notice = Reply(
        "Recarga exitosa.\n\nOperación:\t42      ok\n" + "x" * 1600, (Option("a", "Sí"),)
    )

    await bot.chat.messenger.send(phone.key, notice)

    [late] = twilio.to(phone.address)[1:]  # delivered: the fake holds back what Meta refuses
    value = variables(late)["1"]
    assert late["ContentSid"] == TEMPLATE_SID and twilio.failed == []
    assert value.startswith("Recarga exitosa. Operación: 42 ok xxx")
    assert len(value) == NOTICE_MAX and value.endswith("…")


@pytest.mark.parametrize("template_sid", [TEMPLATE_SID])
async def test_a_short_notice_with_options_fits_whole_on_one_line(
    bot, phone: Phone, twilio: FakeTwilio, clock: MovableClock
):
    await phone.say("hola")
    clock.advance(hours=25)

    await bot.chat.messenger.send(
        phone.key, Reply("¿Promos?", (Option("s", "Sí"), Option("n", "No")))
    )

    [late] = twilio.to(phone.address)[1:]
    assert variables(late) == {"1": "¿Promos? 1. Sí 2. No"}


@pytest.mark.parametrize("template_sid", [TEMPLATE_SID])
async def test_twilio_63016_falls_back_to_the_template_never_a_second_free_form(
    phone: Phone, twilio: FakeTwilio
):
    # Twilio's window has closed although our record says otherwise (it never saw this message).
    response = await phone.post(phone.form("hola"))

    assert response.status_code == 200
    assert twilio.refusals == [63016]
    assert [m.get("ContentSid") for m in twilio.requests] == [None, TEMPLATE_SID]
    assert len(twilio.to(phone.address)) == 1


async def test_twilio_63016_without_template_sends_nothing_more(phone: Phone, twilio: FakeTwilio):
    response = await phone.post(phone.form("hola"))

    assert response.status_code == 200
    assert twilio.refusals == [63016] and len(twilio.requests) == 1
