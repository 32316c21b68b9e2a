"""Points 5 and 6 (admin), consent and retention: the customer's rights over their data."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text

from bot.privacy_cli import purge_inactive
from conversations.limits import RecipientUsage
from conversations.model import Channel, ChatKey, OrderState
from storage.models import OutboxRow
from tests.privacy.canary import CANARIES, NAME, NEW_CUSTOMER, PHONE
from tests.service.chat import Customer

ANA = ChatKey(Channel.TERMINAL, "ana")
BETO = ChatKey(Channel.TERMINAL, "beto")


async def count(services, table: str) -> int:
    async with services.engine.connect() as connection:
        return (await connection.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()


async def paid_customer(services, messenger, key: ChatKey) -> Customer:
    customer = Customer(services, messenger, key)
    await customer.say(*NEW_CUSTOMER, "Confirmar")
    await customer.pay()
    return customer


async def test_borrar_then_misdatos_shows_nothing_and_the_order_stays_anonymised(
    services, messenger
):
    ana = await paid_customer(services, messenger, ANA)
    [before] = await services.orders.recent(ANA, limit=5)

    asked = await ana.say("/borrar")
    done = await ana.say("Sí")
    shown = await ana.say("/misdatos")
    order = await services.orders.get(before.id)

    assert "¿Borro tus datos personales" in asked[-1].text
    assert done[-1].text.startswith("Listo, borré tus datos personales")
    assert shown[0].text == "No guardo ningún dato personal tuyo."
    assert order is not None and order.state is OrderState.COMPLETED
    assert (order.amount_cents, order.created_at, order.id) == (1000, before.created_at, before.id)
    line = order.purchase.line
    assert (line.msisdn, line.owner_name, line.doc_number, order.key.chat_id) == ("", "", "", "")
    assert await count(services, "saved_lines") == 0
    assert await services.orders.recent(ANA, limit=5) == []


async def test_borrar_answered_no_keeps_everything(services, messenger):
    ana = await paid_customer(services, messenger, ANA)

    await ana.say("/borrar", "No")
    shown = await ana.say("mis datos")

    assert NAME in shown[0].text and "versión 2026-11" in shown[0].text
    assert await count(services, "saved_lines") == 1


async def test_misdatos_shows_only_the_asking_customer(services, messenger):
    await paid_customer(services, messenger, ANA)
    beto = Customer(services, messenger, BETO)

    shown = await beto.say("/misdatos")

    assert shown[0].text == "No guardo ningún dato personal tuyo."


async def test_declining_the_notice_stores_nothing_personal(services, messenger):
    beto = Customer(services, messenger, BETO)

    replies = await beto.say("hola", "Beto Ramírez 45678912", "No acepto")  # data typed too soon
    data = await services.privacy.personal_data(BETO)
    session = await services.store.load(BETO)

    assert replies[-1].text.startswith("Entendido, no guardé")
    assert (data.consent_version, data.lines, data.orders) == (None, (), 0)
    assert await count(services, "saved_lines") == 0 and await count(services, "orders") == 0
    assert "Ramírez" not in repr(session) and "45678912" not in repr(session)  # decrypted state


async def test_retention_erases_customers_inactive_longer_than_the_setting(
    services, messenger, settings, clock
):
    await paid_customer(services, messenger, ANA)
    clock.advance(days=300)
    await paid_customer(services, messenger, BETO)
    clock.advance(days=70)  # Ana: 370 days quiet; Beto: 70

    erased = await purge_inactive(settings, now=clock())

    assert erased == 1
    assert (await services.privacy.personal_data(ANA)).lines == ()
    assert NAME in (await services.privacy.personal_data(BETO)).lines[0].owner_name
    assert await count(services, "orders") == 2  # the accounting rows stay
    assert await purge_inactive(settings, now=clock() + timedelta(days=1)) == 0  # idempotent


async def test_borrar_keeps_the_numbers_hash_only_while_the_daily_limit_counts_it(
    services, messenger, settings, clock
):
    ana = await paid_customer(services, messenger, ANA)
    clock.advance(hours=2)
    await ana.say("/borrar", "Sí")
    today = await services.usage.recipient(PHONE, since=clock() - timedelta(days=1))
    clock.advance(days=2)
    await purge_inactive(settings, now=clock())  # the daily retention run

    assert today == RecipientUsage(1, 1000)  # a /borrar does not reset today's limit
    assert await services.usage.recipient(PHONE, since=clock() - timedelta(days=30)) == (
        RecipientUsage(0, 0)  # two days on, nothing links the number to the order any more
    )
    assert await count(services, "orders") == 1


async def test_borrar_also_takes_the_replies_that_named_the_customer_out_of_the_outbox(
    services, messenger
):
    ana = await paid_customer(services, messenger, ANA)
    said = await outbox_replies(services)

    await ana.say("/borrar", "Sí")

    kept = await outbox_replies(services)
    assert any(canary in reply for reply in said for canary in CANARIES)
    assert kept and not any(canary in reply for reply in kept for canary in CANARIES)


async def outbox_replies(services) -> list[str]:
    """Every reply in the outbox, decrypted."""
    async with services.engine.connect() as connection:
        return list((await connection.execute(select(OutboxRow.__table__.c.reply))).scalars())
