"""Small builders shared by the unit tests: the shipped rules, a line, a session at each step."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from conversations.catalog import Catalogue, credit_product
from conversations.machine import Rules, Say, Transition
from conversations.messages import Reply
from conversations.model import (
    Channel,
    ChatKey,
    DocType,
    Line,
    Order,
    OrderState,
    Product,
    ProductKind,
    Purchase,
)
from conversations.session import Draft, Payment, Profile, Session, Step

PACKAGE = ProductKind.PACKAGE

# The sandbox provider's packages, as the machine sees them (codes kept short and readable).
CATALOGUE = Catalogue(
    (
        Product("paq-5-redes", PACKAGE, "Paquete Redes", 500, 3, "1 GB + WhatsApp ilimitado"),
        Product(
            "paq-10-internet", PACKAGE, "Paquete Internet", 1000, 7,
            "3 GB + llamadas ilimitadas a Claro",
        ),
        Product(
            "paq-20-ilimitado", PACKAGE, "Paquete Ilimitado", 2000, 15,
            "8 GB + llamadas y SMS ilimitados",
        ),
        Product(
            "paq-35-mes", PACKAGE, "Paquete Mensual", 3500, 30,
            "20 GB + llamadas ilimitadas + redes sociales",
        ),
    )
)  # fmt: skip
RULES = Rules(CATALOGUE)

LINE = Line("987654321", "María Quispe", DocType.DNI, "10117410")
PURCHASE = Purchase(LINE, credit_product(10))
PAY_URL = "https://checkout.example/pay/cs_test_1"

NEW_CUSTOMER = Profile()
CONSENTED = Profile(consented=True)
RETURNING = Profile(consented=True, lines=(LINE,), last=PURCHASE)

_LINE_ONLY = Draft.of(LINE)
_DRAFTS = {
    Step.CHECK_NUMBER: Draft(msisdn=LINE.msisdn),
    Step.ASK_NAME: Draft(msisdn=LINE.msisdn),
    Step.ASK_DOC_TYPE: Draft(msisdn=LINE.msisdn, owner_name=LINE.owner_name),
    Step.ASK_DOC_NUMBER: Draft(LINE.msisdn, LINE.owner_name, DocType.DNI),
    Step.CHOOSE_KIND: _LINE_ONLY,
    Step.CHOOSE_AMOUNT: _LINE_ONLY,
    Step.ASK_AMOUNT: _LINE_ONLY,
    Step.CHOOSE_PACKAGE: _LINE_ONLY,
    Step.CONFIRM: Draft.of(LINE, PURCHASE.product),
    Step.CHANGE: Draft.of(LINE, PURCHASE.product),
    Step.AWAIT_PAYMENT: Draft.of(LINE, PURCHASE.product),
}
_PROFILES = {Step.IDLE: CONSENTED, Step.CONSENT: NEW_CUSTOMER, Step.PICK_LINE: RETURNING}


def session_at(step: Step) -> Session:
    """A consistent session waiting at ``step`` (an open payment link at AWAIT_PAYMENT)."""
    payment = Payment(1000, "ord-1", PAY_URL) if step is Step.AWAIT_PAYMENT else None
    return Session(step, _DRAFTS.get(step, Draft()), payment, _PROFILES.get(step, CONSENTED))


def replies(transition: Transition) -> list[Reply]:
    return [effect.reply for effect in transition.effects if isinstance(effect, Say)]


def settled_order(order_id: str, state: OrderState, purchase: Purchase = PURCHASE) -> Order:
    return Order(
        id=order_id,
        key=ChatKey(Channel.TELEGRAM, "42"),
        purchase=purchase,
        state=state,
        created_at=datetime(2026, 11, 3, 12, 0, tzinfo=UTC),
        operation_id="OP-123" if state is OrderState.COMPLETED else None,
    )


# Operators name packages freely: a name is not an amount the bot formats.
_NOT_FORMATTED_BY_BOT = tuple(p.name for p in CATALOGUE.packages)
_AMOUNT = re.compile(r"S/\.?\s*\d+(?:[.,]\d+)?")


def badly_formatted_amounts(reply: Reply) -> list[str]:
    """Amounts in a reply not written as ``S/ 10.00`` (text, option labels and link label)."""
    texts = [reply.text, *(o.label for o in reply.options)]
    texts += [reply.link.label] if reply.link else []
    found = []
    for text in texts:
        for exempt in _NOT_FORMATTED_BY_BOT:
            text = text.replace(exempt, "")
        found += [a for a in _AMOUNT.findall(text) if not re.fullmatch(r"S/ \d+\.\d{2}", a)]
    return found
