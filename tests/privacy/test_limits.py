"""Point 6: the abuse limits hold (nothing is created at the gateway past them); admins only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from conversations.model import (
    Channel,
    ChatKey,
    Checkout,
    DocType,
    Line,
    Order,
    OrderState,
    Product,
    ProductKind,
    Purchase,
)
from conversations.ports import Payments
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer
from tests.telegram.conftest import ADMIN_ID

CHAT = ChatKey(Channel.TERMINAL, "flood")


@dataclass
class CountingPayments:
    """The real gateway, counting the checkouts actually created at it."""

    inner: Payments
    opened: list[str] = field(default_factory=list)

    async def open_checkout(self, order: Order):
        self.opened.append(order.id)
        return await self.inner.open_checkout(order)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def counting(services) -> CountingPayments:
    gateway = CountingPayments(services.chat.payments)
    services.chat.payments = gateway
    return gateway


async def test_a_flood_is_answered_once_then_dropped_until_the_minute_passes(
    services, messenger, clock
):
    customer = Customer(services, messenger, CHAT)

    first = await customer.say(*["ayuda"] * 20)
    flooded = await customer.say(*["ayuda"] * 10)
    clock.advance(seconds=61)
    later = await customer.say("ayuda")

    assert len(first) == 20  # the help once each (an idle chat has no pending question)
    assert [r.text for r in flooded] == [
        "Estás enviando muchos mensajes seguidos. Espera un minuto y vuelve a escribirme."
    ]
    assert later and "Te ayudo a recargar" in later[0].text


async def test_the_sixth_link_within_an_hour_is_refused_and_not_created(services, messenger, clock):
    gateway = counting(services)
    customer = Customer(services, messenger, CHAT)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY)

    for _ in range(5):
        await customer.say("Confirmar", "/cancelar", "hola", "Otro número", "987654321")
        await customer.say("Recarga de saldo", "S/ 10")
        clock.advance(minutes=5)
    refused = await customer.say("Confirmar")
    clock.advance(minutes=40)  # the first link is now more than an hour old
    await customer.say("hola", "Otro número", "987654321", "Recarga de saldo", "S/ 10")
    allowed = await customer.say("Confirmar")

    assert refused[-1].text.startswith(
        "Por seguridad, un chat puede pedir hasta 5 enlaces de pago por hora"
    )
    assert allowed[-1].link is not None
    assert len(gateway.opened) == 6  # five, none for the refused one, then one more


async def test_a_fourth_payable_link_is_refused_while_three_are_open(services, messenger, clock):
    """Links opened elsewhere (another device, a replica) still count while payable."""
    gateway = counting(services)
    line = Line("912345678", "María Quispe", DocType.DNI, "45678912")  # another number
    ten = Product("saldo-10", ProductKind.CREDIT, "Recarga S/ 10", 1000, 0)
    for n in range(3):
        checkout = Checkout(f"cs_{n}", f"https://pay.test/{n}", clock() + timedelta(minutes=30))
        order = Order(f"open-{n}", CHAT, Purchase(line, ten), OrderState.AWAITING_PAYMENT,
                      created_at=clock(), checkout=checkout)  # fmt: skip
        await services.orders.add(order)
    customer = Customer(services, messenger, CHAT)

    refused = await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")
    clock.advance(minutes=31)  # the three lapse: no longer payable
    await customer.say("hola", "Otro número", "987654321", "Recarga de saldo", "S/ 10")
    allowed = await customer.say("Confirmar")

    assert refused[-1].text.startswith(
        "Por seguridad, un chat puede tener hasta 3 enlaces de pago abiertos a la vez"
    )
    assert allowed[-1].link is not None
    assert len(gateway.opened) == 1


TO_AMOUNT = NEW_CUSTOMER_TO_SUMMARY[:-1]  # up to the amount menu, for 987 654 321


def chat(services, messenger, name: str) -> Customer:
    return Customer(services, messenger, ChatKey(Channel.TERMINAL, name))


async def test_a_recipient_gets_at_most_five_paid_topups_a_day_from_any_chats(services, messenger):
    gateway = counting(services)
    chats = [chat(services, messenger, f"c{n}") for n in range(6)]

    replies = []
    for customer in chats:
        replies.append(await customer.say(*TO_AMOUNT, "S/ 3", "Confirmar"))
        if replies[-1][-1].link:
            await customer.pay()

    assert all(r[-1].link is not None for r in replies[:5])
    assert replies[5][-1].text.startswith(
        "Por seguridad, un número puede recibir hasta 5 recargas al día"
    )
    assert len(gateway.opened) == 5


async def test_a_refusal_names_the_daily_ceiling_and_what_is_left_today(services, messenger):
    gateway = counting(services)
    first, second = chat(services, messenger, "c1"), chat(services, messenger, "c2")
    await first.say(*TO_AMOUNT, "Otro monto", "200", "Confirmar")
    await first.pay()
    await second.say(*TO_AMOUNT, "S/ 50", "Confirmar")
    await second.pay()
    third = chat(services, messenger, "c3")

    refused = await third.say(*TO_AMOUNT, "Otro monto", "100", "Confirmar")
    allowed = await third.say("hola", "Otro número", "987654321", "Recarga de saldo", "S/ 50")
    allowed = await third.say("Confirmar")

    assert refused[-1].text.startswith(
        "Por seguridad, un número puede recibir hasta S/ 300.00 al día; hoy le quedan S/ 50.00."
    )
    assert "No se hizo ningún cargo" in refused[-1].text
    assert allowed[-1].link is not None
    assert len(gateway.opened) == 3


async def test_other_amount_of_80_soles_on_a_first_purchase_gets_its_link(services, messenger):
    customer = chat(services, messenger, "first-purchase")

    replies = await customer.say(*TO_AMOUNT, "Otro monto", "80", "Confirmar")

    assert replies[-1].link is not None


async def test_an_unpaid_link_from_one_chat_does_not_lock_the_number_for_another(
    services, messenger
):
    """Finding 6: chat A opens S/ 60 for someone's number and never pays; chat B buys S/ 3."""
    stranger, owner = chat(services, messenger, "a"), chat(services, messenger, "b")

    await stranger.say(*TO_AMOUNT, "Otro monto", "60", "Confirmar")
    replies = await owner.say(*TO_AMOUNT, "S/ 3", "Confirmar")

    assert stranger.last_link()
    assert replies[-1].link is not None


async def test_three_unpaid_links_from_three_chats_do_not_lock_the_number(services, messenger):
    strangers = [chat(services, messenger, f"s{n}") for n in range(3)]
    owner = chat(services, messenger, "owner")

    for stranger in strangers:
        await stranger.say(*TO_AMOUNT, "S/ 10", "Confirmar")
    replies = await owner.say(*TO_AMOUNT, "S/ 3", "Confirmar")

    assert replies[-1].link is not None


async def test_a_new_link_for_a_number_expires_the_older_one_and_its_chat_is_told(
    services, messenger
):
    """One payable link per number: at most one purchase can land beyond what was paid."""
    gateway = counting(services)
    first, second = chat(services, messenger, "first"), chat(services, messenger, "second")
    await first.say(*TO_AMOUNT, "S/ 50", "Confirmar")
    [older] = gateway.opened

    await second.say(*TO_AMOUNT, "S/ 10", "Confirmar")
    await services.worker.run_once()
    paid_late = await first.pay()

    assert (await services.orders.get(older)).state is OrderState.EXPIRED
    assert paid_late != "approved"  # the gateway no longer takes the older link
    assert "venció" in first.texts()[-1] and "ningún cargo" in first.texts()[-1]
    assert (await second.pay()) == "approved"


async def test_stats_is_audited_and_a_non_admin_gets_no_figures(bot, user):
    _, services = bot
    maria, admin = user(5001), user(ADMIN_ID)

    refused = (await maria.say("/stats"))[-1].params["text"]
    granted = (await admin.say("/stats"))[-1].params["text"]
    entries = await services.audit.entries()

    assert (
        refused == "Lo siento, ese comando es solo para administradores." and "Pedidos" in granted
    )
    assert [(e.actor, e.action, e.allowed) for e in entries] == [
        ("telegram:5001", "stats", False),
        (f"telegram:{ADMIN_ID}", "stats", True),
    ]
    assert all(e.at is not None for e in entries)


async def test_with_less_than_the_smallest_amount_left_the_refusal_says_tomorrow(
    services, messenger
):
    payers = [chat(services, messenger, f"p{n}") for n in range(2)]
    for payer, amount in zip(payers, ("200", "99"), strict=True):
        await payer.say(*TO_AMOUNT, "Otro monto", amount, "Confirmar")
        await payer.pay()

    refused = await chat(services, messenger, "late").say(*TO_AMOUNT, "S/ 3", "Confirmar")

    assert "hoy le quedan S/ 1.00. Inténtalo mañana." in refused[-1].text
