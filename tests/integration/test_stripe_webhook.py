"""The payment webhook route: signature first, then exactly-once fulfilment."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import stripe
from sqlalchemy import event

from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY


async def _paid_event(captured_bot) -> tuple[bytes, str]:
    _, _, webhooks, customer = captured_bot
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")
    await customer.pay()
    [(payload, signature)] = webhooks.posted
    return payload, signature


def _post(client: httpx.AsyncClient, payload: bytes, signature: str | None):
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["stripe-signature"] = signature
    return client.post("/payments/stripe/webhook", content=payload, headers=headers)


async def test_the_same_webhook_twenty_times_at_once_tops_up_once_and_confirms_once(captured_bot):
    services, client, _, customer = captured_bot
    payload, signature = await _paid_event(captured_bot)

    responses = await asyncio.gather(*(_post(client, payload, signature) for _ in range(20)))
    await asyncio.gather(*(services.worker.run_once() for _ in range(3)))

    assert [r.status_code for r in responses] == [200] * 20
    assert sum(services.topups.posts.values()) == 1
    assert sum("Recarga exitosa" in t for t in customer.texts()) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda p, s: (p, None), id="missing header"),
        pytest.param(lambda p, s: (p, "garbage"), id="malformed header"),
        pytest.param(lambda p, s: (p + b" ", s), id="body changed by one byte"),
        pytest.param(
            lambda p, s: (
                p,
                stripe.WebhookSignature.generate_signature_header(p.decode(), "whsec_other"),
            ),
            id="wrong secret",
        ),
        pytest.param(
            lambda p, s: (p, f"t={int(time.time()) - 301},{s.split(',', 1)[1]}"),
            id="stale timestamp",
        ),
    ],
)
async def test_a_webhook_that_fails_verification_is_refused_and_changes_nothing(
    captured_bot, tamper
):
    services, client, _, customer = captured_bot
    payload, signature = await _paid_event(captured_bot)
    bad_payload, bad_signature = tamper(payload, signature)

    response = await _post(client, bad_payload, bad_signature)
    await services.worker.run_once()

    assert response.status_code == 400
    assert services.topups.posts == {}
    assert not any("Recarga exitosa" in t for t in customer.texts())


async def test_a_paid_order_is_read_once_from_its_webhook_to_the_top_up(captured_bot):
    """record() reads the order and moves it to PAID; push() goes on from that order, not from
    a second read of the row it just wrote."""
    services, client, _, customer = captured_bot
    payload, signature = await _paid_event(captured_bot)
    statements: list[str] = []
    listen = lambda *a: statements.append(a[2])  # noqa: E731 (conn, cursor, statement, …)
    event.listen(services.engine.sync_engine, "before_cursor_execute", listen)
    try:
        response = await _post(client, payload, signature)  # its background push runs in it
    finally:
        event.remove(services.engine.sync_engine, "before_cursor_execute", listen)

    assert response.status_code == 200
    assert sum(services.topups.posts.values()) == 1
    assert sum("Recarga exitosa" in t for t in customer.texts()) == 1
    order_reads = [s for s in statements if s.startswith("SELECT orders.id, orders.customer_id")]
    assert len(order_reads) == 1
