"""Domain values shared by the machine, the use cases and the adapters. Frozen and I/O-free."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Channel(StrEnum):
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"
    TERMINAL = "terminal"


@dataclass(frozen=True)
class ChatKey:
    """One conversation: the same person on two channels has two independent keys."""

    channel: Channel
    chat_id: str


class DocType(StrEnum):
    DNI = "dni"
    CE = "ce"
    PASSPORT = "pasaporte"


class ProductKind(StrEnum):
    CREDIT = "saldo"
    PACKAGE = "paquete"


@dataclass(frozen=True)
class Line:
    """A prepaid line and its owner, as the customer gave them (msisdn: 9 national digits)."""

    msisdn: str
    owner_name: str
    doc_type: DocType
    doc_number: str


@dataclass(frozen=True)
class Product:
    """What the customer buys. Prices are integer céntimos of PEN, IGV included."""

    code: str
    kind: ProductKind
    name: str
    price_cents: int
    validity_days: int  # 0: the provider does not say
    details: str = ""  # what a package includes
    # Where a package is bought: the provider's bundle operator and its fixed local amount.
    operator_id: int | None = None
    face_cents: int | None = None


@dataclass(frozen=True)
class Purchase:
    line: Line
    product: Product


class OrderState(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    TOPPING_UP = "topping_up"
    TOPUP_UNKNOWN = "topup_unknown"
    COMPLETED = "completed"
    TOPUP_FAILED = "topup_failed"
    REFUNDED = "refunded"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FLAGGED = "flagged"
    HELD = "held"  # paid; the provider refused for a reason on our side: retry, then refund


class PaymentProblem(StrEnum):
    """Why a payment that passed the checkout was refunded instead of topped up."""

    CARD_BRAND = "card_brand"  # not Visa or Mastercard
    AMOUNT = "amount_mismatch"  # another amount or currency than the order's


# States the customer is told about once the order reaches them.
SETTLED_STATES = frozenset({OrderState.COMPLETED, OrderState.REFUNDED, OrderState.EXPIRED})


@dataclass(frozen=True)
class Checkout:
    """A hosted payment page opened for an order."""

    session_id: str
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class Order:
    id: str
    key: ChatKey
    purchase: Purchase
    state: OrderState
    created_at: datetime
    checkout: Checkout | None = None
    payment_ref: str | None = None
    operation_id: str | None = None
    failure: str | None = None
    attempts: int = 0  # top-up attempts refused so far (transient or held)
    next_attempt_at: datetime | None = None  # no top-up is sent before this
    refund_after: datetime | None = None  # a held order is refunded from this time on

    @property
    def amount_cents(self) -> int:
        return self.purchase.product.price_cents


class PaymentEventKind(StrEnum):
    COMPLETED = "completed"
    ASYNC_SUCCEEDED = "async_succeeded"
    ASYNC_FAILED = "async_failed"
    EXPIRED = "expired"


@dataclass(frozen=True)
class PaymentEvent:
    """A verified payment webhook, reduced to what fulfilment needs (the body is not trusted
    for amounts: the checkout is re-fetched)."""

    event_id: str
    kind: PaymentEventKind
    session_id: str
    order_id: str | None


@dataclass(frozen=True)
class PersonalData:
    """What the bot keeps about one chat's customer, as shown to them by "mis datos"."""

    consent_version: str | None = None
    consented_at: datetime | None = None
    lines: tuple[Line, ...] = ()
    orders: int = 0  # orders of this chat still holding personal data
