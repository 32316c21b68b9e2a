"""Point 1: after whole journeys with canary data, no log line and no database byte holds it."""

from __future__ import annotations

import logging

from conversations.model import Channel, ChatKey
from tests.privacy.canary import (
    DNI,
    NAME,
    NEW_CUSTOMER,
    PHONE,
    found_in_files,
    found_in_logs,
    found_in_tables,
)
from tests.service.chat import Customer

TERMINAL = ChatKey(Channel.TERMINAL, "chat-canary")
WHATSAPP = ChatKey(Channel.WHATSAPP, f"+51{PHONE}")  # a WhatsApp chat id is the phone number


async def journeys(services, messenger) -> list[str]:
    """New customer pays, comes back, repeats, asks history and data, types a card, cancels."""
    texts = []
    for key in (TERMINAL, WHATSAPP):
        customer = Customer(services, messenger, key)
        await customer.say(*NEW_CUSTOMER, "Confirmar")
        await customer.pay()
        await customer.say("hola", "Repetir última recarga", "Confirmar")
        await customer.say("4242 4242 4242 4242", "/cancelar", "mis recargas", "/misdatos")
        await customer.say("hola", "Otro número", PHONE, "/cancelar", "ayuda")
        texts += customer.texts()
    return texts


async def test_no_canary_in_clear_in_logs_or_database(services, messenger, settings, caplog):
    caplog.set_level(logging.DEBUG)

    texts = await journeys(services, messenger)

    assert any("Recarga exitosa" in t for t in texts)  # the journeys did run to the end
    assert any(NAME in t for t in texts)  # and the canaries were really used
    assert found_in_logs(caplog.records) == []
    assert await found_in_tables(services.engine) == []
    assert found_in_files(settings.database_url) == []


async def test_the_canaries_are_still_readable_through_the_bot(services, messenger):
    customer = Customer(services, messenger, TERMINAL)
    await customer.say(*NEW_CUSTOMER, "Confirmar")
    await customer.pay()

    shown = (await customer.say("/misdatos"))[0].text  # a pending question may follow
    [order] = await services.orders.recent(TERMINAL, limit=5)

    assert NAME in shown and "987 654 321" in shown and "****8912" in shown and DNI not in shown
    assert (order.purchase.line.msisdn, order.purchase.line.doc_number) == (PHONE, DNI)
