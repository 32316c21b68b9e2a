"""An empty provider wallet (sandbox numbers ending in 0002): hold, alert, refund at a deadline."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.app import Overrides, Services, build
from conversations.fulfilment import RetryPolicy
from conversations.model import OrderState
from tests.integration.live.conftest import RecordingAlerts
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer


@pytest.fixture
async def alerted(settings, clock, messenger) -> AsyncIterator[tuple[Services, RecordingAlerts]]:
    alerts = RecordingAlerts()
    app = build(settings, overrides=Overrides(clock=clock, messenger=messenger, alerts=alerts))
    async with app.state.services.lifetime(background=False) as services:
        yield services, alerts


async def _pay_for_0002(services: Services, messenger) -> tuple[Customer, str]:
    customer = Customer(services, messenger)
    steps = list(NEW_CUSTOMER_TO_SUMMARY)
    steps[2] = "987 650 002"
    await customer.say(*steps, "Confirmar")
    await customer.pay()
    return customer, next(iter(services.topups.posts))


async def test_an_empty_wallet_holds_the_order_and_alerts_once(alerted, messenger, clock):
    services, alerts = alerted
    customer, order_id = await _pay_for_0002(services, messenger)

    clock.advance(minutes=10)
    await services.worker.run_once()

    assert (await services.orders.get(order_id)).state is OrderState.HELD
    assert services.topups.posts[order_id] == 2  # tried again after the hold interval
    assert len(alerts.sent) == 1
    assert services.payments.refunds == {}
    assert not any("devolvimos" in t for t in customer.texts())


async def test_a_held_order_is_refunded_once_after_the_deadline(alerted, messenger, clock):
    services, _ = alerted
    customer, order_id = await _pay_for_0002(services, messenger)

    clock.advance(hours=2, minutes=1)
    await services.worker.run_once()
    await services.worker.run_once()

    assert (await services.orders.get(order_id)).state is OrderState.REFUNDED
    assert services.payments.refunds == {order_id: 1000}
    assert sum("devolvimos S/ 10.00" in t for t in customer.texts()) == 1


def test_backoff_gaps_grow_and_start_at_the_first_delay():
    policy = RetryPolicy(first_delay=timedelta(seconds=30))

    gaps = [policy.delay("order-1", attempt) for attempt in range(1, 6)]

    assert gaps[0] >= timedelta(seconds=30)
    assert all(a < b for a, b in itertools.pairwise(gaps))
    assert gaps == [policy.delay("order-1", attempt) for attempt in range(1, 6)]
