"""The whole recharge journey through build(): chat, sandbox payment, top-up, confirmation."""

from __future__ import annotations

from pathlib import Path

from bot.app import Overrides, build
from bot.settings import Settings
from conversations.model import OrderState
from tests.fakes import MovableClock, RecordingMessenger
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer


async def test_new_customer_pays_and_gets_recarga_exitosa(services, messenger):
    customer = Customer(services, messenger)

    summary = (await customer.say(*NEW_CUSTOMER_TO_SUMMARY))[-1]
    link = (await customer.say("Confirmar"))[-1]
    await customer.pay()

    assert "S/ 10.00" in summary.text and "987 654 321" in summary.text
    assert link.link is not None and link.link.url.startswith("https://bot.test/sandbox/checkout/")
    confirmation = customer.texts()[-1]
    assert "Recarga exitosa" in confirmation
    assert "987 654 321" in confirmation and "S/ 10.00" in confirmation
    assert services.topups.balances == {"987654321": 1000}


async def test_returning_customer_repeats_last_recharge_in_three_messages(services, messenger):
    customer = Customer(services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")
    await customer.pay()

    greeting = (await customer.say("hola"))[-1]
    await customer.say("Repetir última recarga", "Confirmar")
    await customer.pay()

    assert any(o.label.startswith("Repetir última recarga") for o in greeting.options)
    assert "Recarga exitosa" in customer.texts()[-1]
    assert services.topups.balances == {"987654321": 2000}


async def test_restart_resumes_at_the_same_step_with_the_same_data(
    settings: Settings, tmp_path: Path
):
    clock, first_messenger = MovableClock(), RecordingMessenger()
    first = build(
        settings, overrides=Overrides(clock=clock, messenger=first_messenger)
    ).state.services
    async with first.lifetime(background=False):
        await Customer(first, first_messenger).say(*NEW_CUSTOMER_TO_SUMMARY[:5])

    second_messenger = RecordingMessenger()
    second = build(
        settings, overrides=Overrides(clock=clock, messenger=second_messenger)
    ).state.services
    async with second.lifetime(background=False):
        customer = Customer(second, second_messenger)
        replies = await customer.say("45678912", "Paquetes", "1")

    assert "987 654 321" in replies[0].text  # the number given before the restart
    assert "María Quispe (DNI 45678912)" in replies[-1].text


async def test_permanent_top_up_failure_refunds_and_tells_the_customer(services, messenger):
    customer = Customer(services, messenger)
    steps = list(NEW_CUSTOMER_TO_SUMMARY)
    steps[2] = "987 650 000"  # the sandbox provider rejects numbers ending in 0000 for good
    await customer.say(*steps, "Confirmar")

    await customer.pay()

    assert "devolvimos S/ 10.00" in customer.texts()[-1]
    assert sum(services.payments.refunds.values()) == 1000
    assert services.topups.balances == {}


async def test_unpaid_link_expires_and_nothing_is_charged(services, messenger, clock):
    customer = Customer(services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")

    clock.advance(minutes=31)
    await services.worker.run_once()
    await services.worker.run_once()

    expired = [t for t in customer.texts() if "venció" in t]
    assert len(expired) == 1 and "no se realizó ningún cargo" in expired[0]
    assert services.topups.posts == {}
    greeting = (await customer.say("hola"))[-1]
    assert any(o.id == "new" for o in greeting.options)  # free to start again


async def test_timed_out_top_up_is_settled_by_a_status_query_not_a_second_post(services, messenger):
    customer = Customer(services, messenger)
    steps = list(NEW_CUSTOMER_TO_SUMMARY)
    steps[2] = "987 650 001"  # the sandbox credits, then "times out"
    await customer.say(*steps, "Confirmar")
    await customer.pay()

    order_id = next(iter(services.topups.posts))
    assert (await services.orders.get(order_id)).state is OrderState.TOPUP_UNKNOWN
    await services.fulfilment.resume()

    assert (await services.orders.get(order_id)).state is OrderState.COMPLETED
    assert services.topups.posts[order_id] == 1
    assert "Recarga exitosa" in customer.texts()[-1]


async def test_cancelling_an_open_link_expires_it_so_it_cannot_be_paid(services, messenger):
    customer = Customer(services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")

    reply = (await customer.say("/cancelar"))[-1]
    outcome = await customer.pay()

    assert "no se realizó ningún cargo" in reply.text
    assert "expired" in outcome.lower()
    assert services.topups.posts == {}
