"""Concurrent payment webhooks and chats on one database: nothing locked out, nothing lost."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from conversations.model import Channel, ChatKey, OrderState
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer

PAYERS = 50


def _steps_for(number: str) -> list[str]:
    steps = list(NEW_CUSTOMER_TO_SUMMARY)
    steps[2] = number
    return [*steps, "Confirmar"]


async def test_fifty_webhooks_and_fifty_chats_at_once_lose_no_write(captured_bot, caplog):
    services, client, webhooks, first = captured_bot
    payers = [replace(first, key=ChatKey(Channel.TERMINAL, f"payer-{i}")) for i in range(PAYERS)]
    for i, payer in enumerate(payers):
        await payer.say(*_steps_for(f"98765{i + 10:04d}"))
        await payer.pay()  # captured, not delivered: the test delivers them all at once below
    newcomers = [
        Customer(services, first.messenger, ChatKey(Channel.TERMINAL, f"new-{i}"))
        for i in range(PAYERS)
    ]
    caplog.set_level(logging.WARNING)

    posts = [
        client.post(
            "/payments/stripe/webhook",
            content=body,
            headers={"stripe-signature": sig, "content-type": "application/json"},
        )
        for body, sig in webhooks.posted
    ]
    chats = [newcomer.say("hola", "Acepto") for newcomer in newcomers]
    results = await asyncio.gather(*posts, *chats)

    assert [r.status_code for r in results[:PAYERS]] == [200] * PAYERS
    orders = [await services.orders.recent(payer.key, limit=1) for payer in payers]
    assert [o[0].state for o in orders] == [OrderState.COMPLETED] * PAYERS  # each pushed on
    sessions = [await services.store.load(newcomer.key) for newcomer in newcomers]
    assert all(s.profile.consented for s in sessions)
    assert "database is locked" not in caplog.text
