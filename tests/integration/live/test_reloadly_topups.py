"""Top-ups through Reloadly's API (the fake): operator check, timeouts, retries, holds, refunds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.reloadly_topups import ACTIONS, ReloadlyTopUps
from conversations.errors import WalletUnreadable
from conversations.model import OrderState
from conversations.ports import Balance
from tests.integration.live.conftest import Bot, World
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY


async def _paid_and_announced(world: World, bot: Bot, number: str = "+51 987-654-321") -> str:
    order_id, session_id = await world.order_paid(bot, number)
    await world.deliver(bot, "checkout.session.completed", session_id)  # it pushes the order on
    return order_id


async def _state(bot: Bot, order_id: str) -> OrderState:
    return (await bot.services.orders.get(order_id)).state


async def test_a_number_on_another_operator_is_told_it_is_not_claro(world: World):
    bot = await world.start()
    world.reloadly.not_claro.add("987654321")

    replies = await bot.customer.say(*NEW_CUSTOMER_TO_SUMMARY[:3])

    assert isinstance(bot.services.topups, ReloadlyTopUps)
    assert "no pertenece a Claro" in replies[-1].text


async def test_a_paid_order_is_topped_up_once_with_the_order_id_and_one_token(world: World):
    bot = await world.start()

    order_id = await _paid_and_announced(world, bot)

    assert await _state(bot, order_id) is OrderState.COMPLETED
    assert world.reloadly.posts == {order_id: 1}
    assert world.reloadly.credited == {order_id: 1000}
    assert world.reloadly.tokens_issued == 1  # operator check and top-up share the cached token
    assert "Recarga exitosa" in bot.customer.texts()[-1]


async def test_live_mode_asks_for_a_production_token_wherever_the_api_is_reached(world: World):
    """RELOADLY_SANDBOX=false through a proxy or a trailing slash still means production."""
    world.reloadly.audience = "https://topups.reloadly.com"
    bot = await world.start(reloadly_sandbox=False)

    order_id = await _paid_and_announced(world, bot)

    assert world.reloadly.posts == {order_id: 1} and world.reloadly.tokens_issued == 1


async def test_an_expired_token_is_renewed_once_and_the_call_goes_through(world: World):
    bot = await world.start()
    world.reloadly.expire_tokens = True

    order_id = await _paid_and_announced(world, bot)

    assert world.reloadly.tokens_issued == 2
    assert world.reloadly.posts == {order_id: 1}


async def test_a_late_answer_is_settled_by_a_status_query_never_a_second_post(world: World):
    bot = await world.start(reloadly_timeout_seconds=0.2)
    world.reloadly.outcomes("987654321", "late")

    order_id = await _paid_and_announced(world, bot)
    unknown = await _state(bot, order_id)
    await bot.services.worker.run_once()

    assert unknown is OrderState.TOPUP_UNKNOWN
    assert await _state(bot, order_id) is OrderState.COMPLETED
    assert world.reloadly.posts == {order_id: 1}
    assert world.reloadly.status_queries == 1
    assert world.stripe.refunds == {}


async def test_refusals_before_acceptance_are_retried_with_the_same_id_and_growing_gaps(
    world: World,
):
    bot = await world.start()
    world.reloadly.outcomes("987654321", "503", "429", "503")

    order_id = await _paid_and_announced(world, bot)
    gaps = []
    while (order := await bot.services.orders.get(order_id)).state is OrderState.PAID:
        gaps.append(order.next_attempt_at - world.clock.now)
        world.clock.now = order.next_attempt_at
        await bot.services.worker.run_once()

    assert order.state is OrderState.COMPLETED
    assert world.reloadly.posts == {order_id: 4}  # one identifier, success on the 4th attempt
    assert len(gaps) == 3 and gaps[0] < gaps[1] < gaps[2]
    assert gaps[0] >= timedelta(seconds=30)
    assert world.stripe.refunds == {}


async def test_retries_are_bounded_then_the_order_is_held_and_alerted(world: World):
    bot = await world.start()
    world.reloadly.outcomes("987654321", *["503"] * 10)

    order_id = await _paid_and_announced(world, bot)
    for _ in range(10):
        world.clock.advance(hours=1)
        await bot.services.worker.run_once()
        if await _state(bot, order_id) is not OrderState.PAID:
            break

    assert await _state(bot, order_id) is OrderState.HELD
    assert world.reloadly.posts == {order_id: 4}
    assert [order for _, order in world.alerts.sent] == [order_id]


async def test_identifier_already_used_asks_the_status_and_does_not_refund(world: World):
    bot = await world.start()
    order_id, session_id = await world.order_paid(bot)
    world.reloadly._credit(order_id, 1000)  # an earlier, forgotten POST did credit the line
    world.reloadly.posts[order_id] += 1

    await world.deliver(bot, "checkout.session.completed", session_id)
    await bot.services.worker.run_once()
    await bot.services.worker.run_once()

    assert await _state(bot, order_id) is OrderState.COMPLETED
    assert world.reloadly.credited == {order_id: 1000}
    assert world.stripe.refunds == {}


async def test_a_permanent_refusal_refunds_once_and_tells_the_customer_once(world: World):
    bot = await world.start()
    world.reloadly.outcomes("987654321", "INVALID_RECIPIENT_PHONE")

    order_id = await _paid_and_announced(world, bot)
    await bot.services.fulfilment.refund(order_id)
    await bot.services.worker.run_once()

    assert await _state(bot, order_id) is OrderState.REFUNDED
    assert world.reloadly.posts == {order_id: 1}
    assert len(world.stripe.refunds) == 1
    assert world.stripe.requests["create_refund"] == 1
    assert sum("devolvimos S/ 10.00" in t for t in bot.customer.texts()) == 1


async def test_an_empty_wallet_holds_and_alerts_and_refunds_only_after_the_deadline(
    world: World,
):
    bot = await world.start()
    world.reloadly.outcomes("987654321", *["INSUFFICIENT_BALANCE"] * 20)

    order_id = await _paid_and_announced(world, bot)
    held = []
    for _ in range(11):  # every 10 minutes for 110 minutes: still within the 2 h deadline
        held.append(await _state(bot, order_id))
        world.clock.advance(minutes=10)
        await bot.services.worker.run_once()
    refunds_before_deadline = len(world.stripe.refunds)
    world.clock.advance(minutes=11)
    await bot.services.worker.run_once()
    await bot.services.worker.run_once()

    assert set(held) == {OrderState.HELD}
    assert refunds_before_deadline == 0
    assert await _state(bot, order_id) is OrderState.REFUNDED
    assert len(world.stripe.refunds) == 1
    assert [what for what, _ in world.alerts.sent] == [
        "top-up held: provider refused (INSUFFICIENT_BALANCE)",
        "held top-up past its deadline",
    ]
    assert sum("devolvimos" in t for t in bot.customer.texts()) == 1


async def test_a_held_order_completes_once_the_wallet_is_refilled(world: World):
    bot = await world.start()
    world.reloadly.outcomes("987654321", "INSUFFICIENT_BALANCE")

    order_id = await _paid_and_announced(world, bot)
    world.clock.advance(minutes=10)
    await bot.services.worker.run_once()

    assert await _state(bot, order_id) is OrderState.COMPLETED
    assert world.reloadly.posts == {order_id: 2}
    assert world.stripe.refunds == {}


async def test_a_refund_retried_after_a_lost_answer_is_the_same_refund(world: World):
    """A crash between Stripe's refund and our commit: the retry replays it under its key."""
    bot = await world.start()
    world.reloadly.outcomes("987654321", "INVALID_RECIPIENT_PHONE")
    order_id = await _paid_and_announced(world, bot)
    order = await bot.services.orders.get(order_id)

    first = await bot.services.payments.refund(order)
    again = await bot.services.payments.refund(order)

    assert first == again and first in world.stripe.refunds
    assert len(world.stripe.refunds) == 1
    keys = world.stripe.idempotency_keys["create_refund"]
    assert len(keys) >= 2 and set(keys) == {f"refund:{order_id}"}


@pytest.mark.parametrize(
    ("code", "state", "status_queries"),
    [
        ("PHONE_RECENTLY_RECHARGED", OrderState.PAID, 0),  # sent again later
        ("MAX_DAILY_TRANSACTION_COUNT_REACHED", OrderState.HELD, 0),  # ours to fix
        ("INVALID_AMOUNT_FOR_OPERATOR", OrderState.REFUNDED, 0),  # never will
        ("SOMETHING_NOT_DOCUMENTED", OrderState.HELD, 1),  # asked about, then held for a human
    ],
)
async def test_each_refusal_is_acted_on_as_the_table_says(
    world: World, code: str, state: OrderState, status_queries: int
):
    bot = await world.start()
    world.reloadly.outcomes("987654321", code)

    order_id = await _paid_and_announced(world, bot)

    assert await _state(bot, order_id) is state
    assert world.reloadly.posts == {order_id: 1}
    assert world.reloadly.status_queries == status_queries
    assert len(world.stripe.refunds) == (state is OrderState.REFUNDED)


def test_every_documented_error_code_and_status_has_an_action():
    documented = {
        "TOKEN_EXPIRED", "COUNTRY_NOT_SUPPORTED", "INVALID_RECIPIENT_PHONE",
        "INVALID_SENDER_PHONE", "INVALID_PHONE_NUMBER", "PHONE_RECENTLY_RECHARGED",
        "OPERATOR_UNAVAILABLE_OR_CURRENTLY_INACTIVE", "INACTIVE_ACCOUNT",
        "INVALID_AMOUNT_FOR_OPERATOR", "TOPUP_TRANSACTION_FAILED",
        "COULD_NOT_AUTO_DETECT_OPERATOR", "ACCOUNT_NOT_FOUND",
        "MAX_DAILY_TRANSACTION_COUNT_REACHED", "MAX_DAILY_TRANSACTION_AMOUNT_REACHED",
        "TRANSACTION_CANNOT_BE_PROCESSED_AT_THE_MOMENT", "INVALID_AMOUNT",
        "INSUFFICIENT_BALANCE", "OPERATOR_NOT_IN_SERVICE", "CUSTOM_IDENTIFIER_ALREADY_USED",
        "SUCCESSFUL", "PENDING", "PROCESSING", "REFUNDED", "FAILED",
    }  # fmt: skip

    assert documented <= set(ACTIONS)


async def test_the_wallet_balance_is_read_as_reloadly_documents_it(world: World):
    bot = await world.start()
    world.reloadly.wallet = 42.5

    balance = await bot.services.topups.balance()  # type: ignore[attr-defined]

    assert balance == Balance(4250, "USD")


async def test_an_unreadable_wallet_is_said_so_not_raised_as_a_top_up_failure(world: World):
    bot = await world.start()
    world.reloadly.expire_tokens = True
    world.reloadly.client_secret = "rotated"  # the renewal is refused too

    with pytest.raises(WalletUnreadable):
        await bot.services.topups.balance()  # type: ignore[attr-defined]
