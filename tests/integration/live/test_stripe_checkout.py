"""Stripe Checkout through the real SDK against the fake: sessions, webhooks, exactly-once."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from adapters.stripe_payments import StripePayments
from conversations.model import OrderState
from tests.integration.live.conftest import World, database_of, order_rows, post_webhook


async def test_the_checkout_session_is_created_as_the_issue_asks(world: World):
    bot = await world.start()

    order_id, session_id = await world.order_opened(bot)

    params = world.stripe.created_params[session_id]
    order = await bot.services.orders.get(order_id)
    assert isinstance(bot.services.payments, StripePayments)
    assert params["mode"] == "payment" and params["locale"] == "es"
    assert params["line_items"]["0"]["price_data"] == {
        "currency": "pen",
        "unit_amount": "1000",
        "product_data": {"name": "Recarga de saldo S/ 10.00"},
    }
    assert params["client_reference_id"] == order_id
    assert params["metadata"] == {"order_id": order_id}
    assert params["allowed_payment_method_types"] == {"0": "card"}
    assert params["payment_method_options"]["card"]["restrictions"]["brands_blocked"] == {
        "0": "american_express", "1": "discover_global_network",
    }  # fmt: skip
    assert params["success_url"] == f"https://bot.test/pay/{order_id}/done"
    assert params["cancel_url"] == f"https://bot.test/pay/{order_id}/cancelled"
    lifetime = int(params["expires_at"]) - order.created_at.timestamp()
    assert 30 * 60 <= lifetime <= 31 * 60
    assert order.checkout.session_id == session_id


async def test_a_retried_create_gets_the_same_session_back(world: World):
    bot = await world.start()
    order_id, session_id = await world.order_opened(bot)
    order = await bot.services.orders.get(order_id)

    world.clock.advance(seconds=20)  # a retry later must not change the parameters
    again = await bot.services.payments.open_checkout(order)

    assert again.session_id == session_id
    assert len(world.stripe.sessions) == 1
    assert world.stripe.requests["create_session"] == 2


async def test_cancelling_while_the_link_is_open_expires_the_session(world: World):
    bot = await world.start()
    order_id, session_id = await world.order_opened(bot)

    await bot.customer.say("/cancelar")

    assert world.stripe.sessions[session_id]["status"] == "expired"
    assert (await bot.services.orders.get(order_id)).state is OrderState.CANCELLED


async def test_fifty_concurrent_deliveries_top_up_once_and_confirm_once(world: World):
    bot = await world.start()
    order_id, session_id = await world.order_paid(bot)
    payload = world.stripe.event("checkout.session.completed", session_id)
    signature = world.stripe.sign(payload)

    responses = await asyncio.gather(
        *(post_webhook(bot.client, payload, signature) for _ in range(50))
    )
    await asyncio.gather(*(bot.services.worker.run_once() for _ in range(3)))

    assert [r.status_code for r in responses] == [200] * 50
    assert world.reloadly.posts == {order_id: 1}
    assert sum("Recarga exitosa" in t for t in bot.customer.texts()) == 1
    assert (await bot.services.orders.get(order_id)).state is OrderState.COMPLETED


async def test_a_replayed_valid_event_changes_nothing(world: World):
    bot = await world.start()
    order_id, session_id = await world.order_paid(bot)
    payload = world.stripe.event("checkout.session.completed", session_id)
    await post_webhook(bot.client, payload, world.stripe.sign(payload))
    await bot.services.worker.run_once()
    before = await order_rows(database_of(world))

    replay = await post_webhook(bot.client, payload, world.stripe.sign(payload))
    await bot.services.worker.run_once()

    assert replay.status_code == 200
    assert (await order_rows(database_of(world))) == before
    assert world.reloadly.posts == {order_id: 1}
    assert sum("Recarga exitosa" in t for t in bot.customer.texts()) == 1


EVENTS = ("checkout.session.completed", "checkout.session.expired",
          "checkout.session.async_payment_failed")  # fmt: skip


@pytest.mark.parametrize("order", list(itertools.permutations(EVENTS)), ids=str)
@pytest.mark.parametrize(
    ("truth", "final", "top_ups"),
    [("paid", OrderState.COMPLETED, 1), ("failed", OrderState.EXPIRED, 0)],
)
async def test_every_event_order_ends_in_the_state_the_session_says(
    world: World, order, truth, final, top_ups
):
    bot = await world.start()
    order_id, session_id = await world.order_opened(bot)
    if truth == "paid":
        world.stripe.complete(session_id)
    else:
        world.stripe.fail_async(session_id)

    for event_type in order:
        assert (await world.deliver(bot, event_type, session_id)).status_code == 200
        await bot.services.worker.run_once()

    assert (await bot.services.orders.get(order_id)).state is final
    assert sum(world.reloadly.posts.values()) == top_ups
    assert world.stripe.refunds == {}


async def test_a_payment_naming_another_order_is_flagged_not_topped_up(world: World):
    bot = await world.start()
    order_id, session_id = await world.order_opened(bot)
    world.stripe.complete(session_id, client_reference_id="someone-elses-order")

    await world.deliver(bot, "checkout.session.completed", session_id)  # names another order
    await bot.client.get(f"/pay/{order_id}/done")  # this order's own check of its session
    await bot.services.worker.run_once()

    order = await bot.services.orders.get(order_id)
    assert order.state is OrderState.FLAGGED and order.failure == "mismatch"
    assert world.reloadly.posts == {}
    assert world.alerts.sent == [("payment does not match the order", order_id)]


@pytest.mark.parametrize(
    ("paid", "failure", "told"),
    [
        ({"brand": "amex"}, "card_brand", "Solo aceptamos tarjetas Visa o Mastercard."),
        ({"brand": "discover"}, "card_brand", "Solo aceptamos tarjetas Visa o Mastercard."),
        ({"amount_total": 999}, "amount_mismatch", "El pago no coincidió con el monto"),
        ({"currency": "usd"}, "amount_mismatch", "El pago no coincidió con el monto"),
    ],
)
async def test_a_payment_with_another_brand_or_amount_is_refunded_in_full_not_topped_up(
    world: World, paid, failure, told
):
    """Checkout blocks other brands, but the charge is checked all the same (latest charge)."""
    bot = await world.start()
    order_id, session_id = await world.order_opened(bot)
    world.stripe.complete(session_id, **paid)

    await world.deliver(bot, "checkout.session.completed", session_id)
    await bot.client.get(f"/pay/{order_id}/done")
    await bot.services.worker.run_once()

    order = await bot.services.orders.get(order_id)
    charged = world.stripe.sessions[session_id]["amount_total"]
    assert (order.state, order.failure) == (OrderState.REFUNDED, failure)
    assert [r["amount"] for r in world.stripe.refunds.values()] == [charged]
    assert world.reloadly.posts == {}
    assert sum(told in text for text in bot.customer.texts()) == 1
    assert len(world.alerts.sent) == 1


async def test_the_success_page_fulfils_when_the_webhook_is_late(world: World):
    bot = await world.start()
    order_id, _ = await world.order_paid(bot)

    page = await bot.client.get(f"/pay/{order_id}/done")
    again = await bot.client.get(f"/pay/{order_id}/done")

    assert page.status_code == again.status_code == 200
    assert (await bot.services.orders.get(order_id)).state is OrderState.COMPLETED
    assert world.reloadly.posts == {order_id: 1}


async def test_the_success_page_of_a_foreign_or_unknown_order_changes_nothing(world: World):
    bot = await world.start()
    order_id, _ = await world.order_opened(bot)  # open, not paid
    before = world.stripe.outbound

    unpaid = await bot.client.get(f"/pay/{order_id}/done")
    unknown = await bot.client.get("/pay/cs_test_random/done")

    assert unpaid.text == unknown.text
    assert (await bot.services.orders.get(order_id)).state is OrderState.AWAITING_PAYMENT
    assert world.reloadly.posts == {}
    assert world.stripe.outbound == before + 1  # only the order's own session was re-fetched


async def test_the_reconciler_fulfils_a_paid_order_whose_webhook_never_came(world: World):
    bot = await world.start()
    order_id, _ = await world.order_paid(bot)  # paid at Stripe; no event is ever delivered

    world.clock.advance(minutes=32)  # the link's expiry has passed
    await bot.services.worker.run_once()

    assert (await bot.services.orders.get(order_id)).state is OrderState.COMPLETED
    assert world.reloadly.posts == {order_id: 1}


async def test_the_reconciler_expires_an_unpaid_lapsed_link_at_stripe(world: World):
    bot = await world.start()
    order_id, session_id = await world.order_opened(bot)

    world.clock.advance(minutes=32)
    await bot.services.worker.run_once()

    assert (await bot.services.orders.get(order_id)).state is OrderState.EXPIRED
    assert world.stripe.sessions[session_id]["status"] == "expired"
    assert world.reloadly.posts == {}


async def test_fifty_distinct_events_across_two_processes_top_up_once(world: World):
    """Stripe's retries, the other event types and the success page, on two bots at once."""
    first, second = await world.start(), await world.start()
    order_id, session_id = await world.order_paid(first)
    kinds = ("checkout.session.completed", "checkout.session.async_payment_succeeded")

    responses = await asyncio.gather(
        *(world.deliver((first, second)[i % 2], kinds[i % 3 == 0], session_id) for i in range(50)),
        *(bot.client.get(f"/pay/{order_id}/done") for bot in (first, second)),
        *(bot.services.worker.run_once() for bot in (first, second, first, second)),
    )
    await asyncio.gather(first.services.worker.run_once(), second.services.worker.run_once())

    assert {r.status_code for r in responses if r is not None} == {200}
    assert world.reloadly.posts == {order_id: 1}
    confirmations = first.customer.texts() + second.messenger.texts(first.customer.key)
    assert sum("Recarga exitosa" in t for t in confirmations) == 1


async def test_an_async_payment_tops_up_only_once_it_succeeds(world: World):
    bot = await world.start()
    order_id, session_id = await world.order_opened(bot)
    world.stripe.fail_async(session_id)  # processing: checkout complete, not yet paid

    await world.deliver(bot, "checkout.session.completed", session_id)
    await bot.services.worker.run_once()
    waiting = (await bot.services.orders.get(order_id)).state
    world.stripe.complete(session_id)
    await world.deliver(bot, "checkout.session.async_payment_succeeded", session_id)
    await bot.services.worker.run_once()

    assert waiting is OrderState.AWAITING_PAYMENT
    assert (await bot.services.orders.get(order_id)).state is OrderState.COMPLETED
    assert world.reloadly.posts == {order_id: 1}
