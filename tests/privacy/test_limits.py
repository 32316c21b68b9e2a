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
LIMIT_TEXT = "Por seguridad no generé otro enlace"


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

    assert LIMIT_TEXT in refused[-1].text
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

    assert refused[-1].text.startswith("Ya pediste varios enlaces de pago")
    assert allowed[-1].link is not None
    assert len(gateway.opened) == 1


async def test_a_recipient_gets_at_most_three_topups_a_day_from_any_chats(services, messenger):
    gateway = counting(services)
    chats = [Customer(services, messenger, ChatKey(Channel.TERMINAL, f"c{n}")) for n in range(4)]

    replies = []
    for customer in chats:
        replies.append(await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar"))
        if replies[-1][-1].link:
            await customer.pay()

    assert all(r[-1].link is not None for r in replies[:3])
    assert LIMIT_TEXT in replies[3][-1].text and "máximo de recargas" in replies[3][-1].text
    assert len(gateway.opened) == 3


async def test_a_recipient_gets_at_most_sixty_soles_a_day(services, messenger):
    gateway = counting(services)
    first = Customer(services, messenger, ChatKey(Channel.TERMINAL, "c1"))
    second = Customer(services, messenger, ChatKey(Channel.TERMINAL, "c2"))

    await first.say(*NEW_CUSTOMER_TO_SUMMARY[:-1], "S/ 50", "Confirmar")
    await first.pay()
    refused = await second.say(*NEW_CUSTOMER_TO_SUMMARY[:-1], "S/ 15", "Confirmar")
    allowed = await second.say("hola", "Otro número", "987654321", "Recarga de saldo", "S/ 10")
    allowed = await second.say("Confirmar")

    assert LIMIT_TEXT in refused[-1].text
    assert allowed[-1].link is not None
    assert len(gateway.opened) == 2


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
