"""The sandbox top-up provider: scripted endings by the number's last digits, and its counters."""

from __future__ import annotations

import contextlib

import pytest

from adapters.sandbox_topups import SandboxTopUps
from conversations.catalog import credit_product
from conversations.errors import FailureKind, TopUpRejected, TopUpUnknown
from conversations.machine import Verdict
from conversations.model import Channel, ChatKey, DocType, Line, Order, OrderState, Purchase
from conversations.ports import TopUpState, TopUpStatus
from tests.fakes import MovableClock


def make_order(msisdn: str, order_id: str = "ord-1", soles: int = 10) -> Order:
    line = Line(msisdn, "Ana Díaz", DocType.DNI, "12345678")
    purchase = Purchase(line, credit_product(soles))
    key = ChatKey(Channel.WHATSAPP, "51987654321")
    return Order(order_id, key, purchase, OrderState.TOPPING_UP, created_at=MovableClock().now)


@pytest.fixture
def provider() -> SandboxTopUps:
    return SandboxTopUps()


@pytest.mark.parametrize(
    ("msisdn", "verdict"),
    [("987659999", Verdict.OTHER), ("987654321", Verdict.CLARO), ("987650000", Verdict.CLARO)],
)
async def test_operator_of(provider: SandboxTopUps, msisdn: str, verdict: Verdict):
    assert await provider.operator_of(msisdn) is verdict


async def test_an_ordinary_number_is_credited_at_once(provider: SandboxTopUps):
    operation_id = await provider.send(make_order("987654321"))

    assert len(operation_id) == 8 and operation_id.isdigit()
    assert provider.balances == {"987654321": 1000}
    assert provider.posts == {"ord-1": 1}
    assert await provider.status("ord-1") == TopUpStatus(TopUpState.SUCCESSFUL, operation_id)


async def test_operation_ids_follow_the_order_even_after_a_restart_and_balances_add_up(
    provider: SandboxTopUps,
):
    first = await provider.send(make_order("987654321", "ord-1", soles=10))
    second = await provider.send(make_order("987654321", "ord-2", soles=5))
    after_restart = await SandboxTopUps().send(make_order("987654321", "ord-1", soles=10))

    assert first != second and after_restart == first
    assert provider.balances == {"987654321": 1500}


async def test_0000_is_refused_for_good_and_credits_nothing(provider: SandboxTopUps):
    with pytest.raises(TopUpRejected) as refused:
        await provider.send(make_order("987650000"))

    assert (refused.value.code, refused.value.kind) == (
        "INVALID_RECIPIENT_PHONE",
        FailureKind.PERMANENT,
    )
    assert provider.balances == {}
    assert await provider.status("ord-1") == TopUpStatus(TopUpState.FAILED)


async def test_0001_credits_but_times_out_and_status_tells_the_truth(provider: SandboxTopUps):
    with pytest.raises(TopUpUnknown):
        await provider.send(make_order("987650001"))

    assert provider.balances == {"987650001": 1000}
    status = await provider.status("ord-1")
    assert status.state is TopUpState.SUCCESSFUL and status.operation_id


async def test_0002_is_an_empty_wallet_that_can_be_retried(provider: SandboxTopUps):
    for _ in range(2):
        with pytest.raises(TopUpRejected) as refused:
            await provider.send(make_order("987650002"))

        assert (refused.value.code, refused.value.kind) == (
            "INSUFFICIENT_BALANCE",
            FailureKind.PRECONDITION,
        )
    assert provider.balances == {}
    assert provider.posts == {"ord-1": 2}
    assert await provider.status("ord-1") == TopUpStatus(TopUpState.NOT_FOUND)


@pytest.mark.parametrize("msisdn", ["987654321", "987650001", "987650000"])
async def test_resending_a_used_order_id_is_unknown_and_credits_nothing(
    provider: SandboxTopUps, msisdn: str
):
    order = make_order(msisdn)
    # The first ending is scripted by the number; what matters here is the resend.
    with contextlib.suppress(TopUpUnknown, TopUpRejected):
        await provider.send(order)
    balances_before = dict(provider.balances)

    with pytest.raises(TopUpUnknown):
        await provider.send(order)

    assert provider.balances == balances_before
    assert provider.posts == {"ord-1": 2}


async def test_status_of_an_order_never_sent_is_not_found(provider: SandboxTopUps):
    assert await provider.status("never-sent") == TopUpStatus(TopUpState.NOT_FOUND)
