"""The sandbox gateway remembers a paid link across a restart: no second card is taken."""

from __future__ import annotations

import httpx

from bot.app import Overrides, build
from bot.settings import Settings
from tests.fakes import MovableClock, RecordingMessenger
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, TEST_CARD, Customer

CARD_FORM = {"number": TEST_CARD, "expiry": "12/30", "cvc": "123", "name": "MARIA QUISPE"}


async def test_a_paid_link_opened_after_a_restart_says_paid_and_charges_nothing(
    settings: Settings,
):
    clock = MovableClock()
    first_messenger = RecordingMessenger()
    first = build(settings, overrides=Overrides(clock=clock, messenger=first_messenger))
    async with first.state.services.lifetime(background=False) as services:
        customer = Customer(services, first_messenger)
        await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")
        await customer.pay()
        path = customer.last_link().removeprefix("https://bot.test")

    second = build(settings, overrides=Overrides(clock=clock, messenger=RecordingMessenger()))
    async with second.state.services.lifetime(background=False) as restarted:
        transport = httpx.ASGITransport(app=second)
        async with httpx.AsyncClient(transport=transport, base_url="https://bot.test") as browser:
            page = await browser.get(path)
            submitted = await browser.post(path, data=CARD_FORM)
        view = await restarted.payments.retrieve(path.rsplit("/", 1)[-1])

    assert "Este pago ya se realizó" in page.text and 'name="number"' not in page.text
    assert "Este pago ya se realizó" in submitted.text
    assert restarted.payments.charged == {}  # the restarted gateway took no card
    assert view.paid and view.card_brand == "visa"
    assert sum(restarted.topups.posts.values()) == 0
