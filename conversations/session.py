"""What the bot remembers about one chat between messages, and its JSON form for storage."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from conversations.model import DocType, Line, Order, Product, ProductKind, Purchase


class Step(StrEnum):
    """Where the chat stands; the value is what storage persists, so keep it readable."""

    IDLE = "idle"
    CONSENT = "consent"
    PICK_LINE = "pick_line"
    ASK_NUMBER = "ask_number"
    CHECK_NUMBER = "check_number"
    ASK_NAME = "ask_name"
    ASK_DOC_TYPE = "ask_doc_type"
    ASK_DOC_NUMBER = "ask_doc_number"
    CHOOSE_KIND = "choose_kind"
    CHOOSE_AMOUNT = "choose_amount"
    ASK_AMOUNT = "ask_amount"
    CHOOSE_PACKAGE = "choose_package"
    CONFIRM = "confirm"
    CHANGE = "change"
    AWAIT_PAYMENT = "await_payment"
    ASK_PROMOS = "ask_promos"  # after the first completed recharge: promos, yes or no?
    CONFIRM_ERASE = "confirm_erase"  # "¿Borro tus datos?" (from any step)
    HANDOFF = "handoff"  # a person answers: the bot stays quiet until "menú" or /bot


@dataclass(frozen=True)
class Draft:
    """The purchase being assembled, one answer at a time."""

    msisdn: str | None = None
    owner_name: str | None = None
    doc_type: DocType | None = None
    doc_number: str | None = None
    product: Product | None = None
    single_name: str | None = None  # a one-word name typed once: a second time accepts it

    @property
    def line(self) -> Line | None:
        if self.msisdn and self.owner_name and self.doc_type and self.doc_number:
            return Line(self.msisdn, self.owner_name, self.doc_type, self.doc_number)
        return None

    @property
    def purchase(self) -> Purchase | None:
        line = self.line
        return Purchase(line, self.product) if line and self.product else None

    @classmethod
    def of(cls, line: Line, product: Product | None = None) -> Draft:
        return cls(line.msisdn, line.owner_name, line.doc_type, line.doc_number, product)


@dataclass(frozen=True)
class Payment:
    """The checkout the chat waits on; order_id and url are None while it is being opened."""

    amount_cents: int
    order_id: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Profile:
    """What storage knows of the customer; loaded with the session, changed through effects."""

    consented: bool = False
    promos_asked: bool = False  # the promo question was asked once (or answered)
    lines: tuple[Line, ...] = ()
    last: Purchase | None = None

    def with_line(self, line: Line) -> Profile:
        others = tuple(saved for saved in self.lines if saved.msisdn != line.msisdn)
        return replace(self, lines=(line, *others))


@dataclass(frozen=True)
class Session:
    step: Step = Step.IDLE
    draft: Draft = field(default_factory=Draft)
    payment: Payment | None = None
    profile: Profile = field(default_factory=Profile)
    # The order of ``payment`` as storage has it now: read with every message, never persisted,
    # so what the bot says about the money follows the order's real state.
    order: Order | None = None


def dump_session(session: Session) -> str:
    """Serialise the chat state for storage; the profile is storage's own and is left out."""
    data = {"step": session.step.value, "draft": asdict(session.draft)}
    if session.payment:
        data["payment"] = asdict(session.payment)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def load_session(text: str | None, profile: Profile) -> Session:
    """Rebuild a session from storage; unknown or corrupt state starts the chat afresh."""
    if not text:
        return Session(profile=profile)
    try:
        data = json.loads(text)
        draft = data["draft"]
        product = draft.get("product")
        payment = data.get("payment")
        return Session(
            step=Step(data["step"]),
            draft=Draft(
                msisdn=draft.get("msisdn"),
                owner_name=draft.get("owner_name"),
                doc_type=DocType(draft["doc_type"]) if draft.get("doc_type") else None,
                doc_number=draft.get("doc_number"),
                product=product_from_dict(product) if product else None,
                single_name=draft.get("single_name"),
            ),
            payment=Payment(**payment) if payment else None,
            profile=profile,
        )
    except (ValueError, KeyError, TypeError):
        return Session(profile=profile)


def product_from_dict(data: dict[str, Any]) -> Product:
    return Product(**{**data, "kind": ProductKind(data["kind"])})
