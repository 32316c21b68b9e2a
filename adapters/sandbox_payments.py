"""SandboxPayments: a local stand-in for Stripe Checkout, so the whole journey runs with no keys.

It implements the core's ``Payments`` port and backs the sandbox hosted page (bot/sandbox_page.py).

- Session ids carry their own facts (order id, amount, product name, expiry) sealed with an HMAC
  keyed by the webhook secret, so a link still works after a restart and cannot be forged.
  What happened to a session since (paid with which card brand, or expired) is recorded once in
  ``CheckoutStates`` (the database in the app), so after a restart a paid link says so instead of
  taking a second card.
- Webhooks are built in the shape of Stripe's ``event`` and ``checkout.session`` objects, signed
  exactly as Stripe signs them and handed to ``deliver``, which posts them to the app's own
  webhook route. A failed delivery is logged, not retried: the worker re-fetches the session.
- Card data typed on the page is checked and dropped: never stored, logged or returned.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import stripe
from stdnum import luhn

from adapters.card import Brand, brand_of, card_digits, cvc_valid, expiry_valid
from conversations.errors import PaymentProviderError
from conversations.model import Checkout, Order
from conversations.ports import CheckoutView

logger = logging.getLogger(__name__)

SESSION_PREFIX = "cs_test_"
_MAC_BYTES = 16
_MAC_CHARS = 22  # 16 bytes in unpadded urlsafe base64
_NAME_CHARS = 40  # bounds the session id (and its URL) to under ~200 characters
DECLINED_CARDS = frozenset({"4000000000000002"})  # Stripe's "generic decline" test card


class CheckoutStates(Protocol):
    """Where the gateway records how each session ended; each session ends once."""

    async def ended(self, session_id: str) -> tuple[str, str | None] | None:
        """The session's end (a PageState value) and the card brand it was paid with."""

    async def end(self, session_id: str, state: str, *, brand: str | None, at: datetime) -> bool:
        """Record the session's end; False, recording nothing, if it had ended already."""


@dataclass
class MemoryCheckoutStates:
    """CheckoutStates kept in memory: for a gateway used on its own, without the app."""

    ends: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    async def ended(self, session_id: str) -> tuple[str, str | None] | None:
        return self.ends.get(session_id)

    async def end(self, session_id: str, state: str, *, brand: str | None, at: datetime) -> bool:
        if session_id in self.ends:
            return False
        self.ends[session_id] = (state, brand)
        return True


class PayOutcome(StrEnum):
    APPROVED = "approved"
    DECLINED = "declined"
    NOT_ALLOWED = "not_allowed"  # a brand other than Visa or Mastercard
    INVALID_NUMBER = "invalid_number"
    INVALID_EXPIRY = "invalid_expiry"
    INVALID_CVC = "invalid_cvc"
    MISSING_NAME = "missing_name"
    ALREADY_PAID = "already_paid"
    EXPIRED = "expired"


class PageState(StrEnum):
    OPEN = "open"
    PAID = "paid"
    EXPIRED = "expired"


@dataclass(frozen=True)
class CheckoutPage:
    """What the hosted page shows for a session."""

    amount_cents: int
    product_name: str
    state: PageState


@dataclass(frozen=True)
class _Facts:
    """What a session id says about itself."""

    order_id: str
    amount_cents: int
    product_name: str
    expires_at: int  # unix seconds


def check_card(*, number: str, expiry: str, cvc: str, name: str, today: date) -> PayOutcome:
    """Judge a card as the gateway would: APPROVED, or why it cannot be charged."""
    digits = card_digits(number)
    if digits is None or not luhn.is_valid(digits):
        return PayOutcome.INVALID_NUMBER
    if brand_of(digits) is Brand.OTHER:
        return PayOutcome.NOT_ALLOWED
    if not expiry_valid(expiry, today=today):
        return PayOutcome.INVALID_EXPIRY
    if not cvc_valid(cvc):
        return PayOutcome.INVALID_CVC
    if not name.strip():
        return PayOutcome.MISSING_NAME
    return PayOutcome.DECLINED if digits in DECLINED_CARDS else PayOutcome.APPROVED


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SandboxPayments:
    """A Stripe Checkout look-alike that runs in process (implements ``Payments``)."""

    def __init__(
        self,
        *,
        public_base_url: str,
        webhook_secret: str,
        deliver: Callable[[bytes, str], Awaitable[int]],
        clock: Callable[[], datetime],
        ttl: timedelta = timedelta(minutes=30),
        states: CheckoutStates | None = None,
    ) -> None:
        self._base = public_base_url.rstrip("/")
        self._secret = webhook_secret
        self._deliver = deliver
        self._clock = clock
        self._ttl = ttl
        self._states = states or MemoryCheckoutStates()
        self.charged: dict[str, int] = {}  # order id -> céntimos charged (this run's ledger)
        self.refunds: dict[str, int] = {}  # order id -> céntimos refunded (one refund each)

    async def open_checkout(self, order: Order) -> Checkout:
        """Open a payment page for the order, payable until ``ttl`` from now."""
        expires_at = (self._clock() + self._ttl).replace(microsecond=0)
        name = order.purchase.product.name[:_NAME_CHARS]
        facts = _Facts(order.id, order.amount_cents, name, int(expires_at.timestamp()))
        session_id = self._seal(facts)
        logger.info("sandbox checkout opened for order=%s", order.id)
        return Checkout(session_id, f"{self._base}/sandbox/checkout/{session_id}", expires_at)

    async def retrieve(self, session_id: str) -> CheckoutView:
        """Fetch the session as it is now; a forged or unknown id raises PaymentProviderError."""
        facts = self._facts(session_id)
        ended = await self._states.ended(session_id)
        paid = ended is not None and ended[0] == PageState.PAID
        return CheckoutView(
            session_id=session_id,
            order_id=facts.order_id,
            paid=paid,
            open=self._state_of(ended, facts) is PageState.OPEN,
            amount_cents=facts.amount_cents,
            currency="pen",
            payment_ref=self._intent_of(session_id) if paid else None,
            card_brand=ended[1] if ended else None,
        )

    async def expire(self, session_id: str) -> None:
        """Close the session and send ``checkout.session.expired`` (no-op once paid or expired)."""
        facts = self._facts(session_id)
        if not await self._states.end(session_id, PageState.EXPIRED, brand=None, at=self._clock()):
            return
        logger.info("sandbox checkout expired for order=%s", facts.order_id)
        await self._send("checkout.session.expired", session_id, facts, paid=False)

    async def refund(self, order: Order) -> str:
        """Refund the order's payment in full once (key ``refund:{order.id}``); return its id."""
        refund_id = "re_test_" + self._digest(f"refund:{order.id}")
        if order.id not in self.refunds:
            self.refunds[order.id] = await self._refundable(order)
            logger.info("sandbox refund %s for order=%s", refund_id, order.id)
        return refund_id

    async def page(self, session_id: str) -> CheckoutPage | None:
        """Return what the hosted page shows, or None for an id this gateway never issued."""
        facts = self._unseal(session_id)
        if facts is None:
            return None
        state = await self._state(session_id, facts)
        return CheckoutPage(facts.amount_cents, facts.product_name, state)

    async def pay(
        self, session_id: str, *, number: str, expiry: str, cvc: str, name: str
    ) -> PayOutcome:
        """Charge a card typed on the page; on approval send ``checkout.session.completed``."""
        facts = self._facts(session_id)
        state = await self._state(session_id, facts)
        if state is PageState.OPEN:
            today = self._clock().date()
            outcome = check_card(number=number, expiry=expiry, cvc=cvc, name=name, today=today)
            if outcome is not PayOutcome.APPROVED:
                logger.info("sandbox payment for order=%s: %s", facts.order_id, outcome)
                return outcome
            brand = brand_of(card_digits(number) or "").value
            # Recorded once: of two submits (or two processes), one pays and the other is told.
            if await self._states.end(session_id, PageState.PAID, brand=brand, at=self._clock()):
                logger.info("sandbox payment for order=%s: %s", facts.order_id, outcome)
                self.charged[facts.order_id] = facts.amount_cents
                await self._send("checkout.session.completed", session_id, facts, paid=True)
                return outcome
            state = await self._state(session_id, facts)
        return PayOutcome.ALREADY_PAID if state is PageState.PAID else PayOutcome.EXPIRED

    async def _state(self, session_id: str, facts: _Facts) -> PageState:
        return self._state_of(await self._states.ended(session_id), facts)

    def _state_of(self, ended: tuple[str, str | None] | None, facts: _Facts) -> PageState:
        if ended is not None:
            return PageState(ended[0])
        if self._clock().timestamp() >= facts.expires_at:
            return PageState.EXPIRED
        return PageState.OPEN

    async def _refundable(self, order: Order) -> int:
        """The amount charged for the order; raise if this gateway never charged it."""
        session_id = order.checkout.session_id if order.checkout else ""
        facts = self._unseal(session_id)
        # The order's payment ref is sealed by us too: it proves the charge on its own.
        paid = facts is not None and await self._state(session_id, facts) is PageState.PAID
        charged = paid or order.payment_ref == self._intent_of(session_id)
        if facts is None or facts.order_id != order.id or not charged:
            raise PaymentProviderError(f"order {order.id} has no sandbox payment to refund")
        return facts.amount_cents

    def _seal(self, facts: _Facts) -> str:
        compact = {
            "o": facts.order_id,
            "a": facts.amount_cents,
            "n": facts.product_name,
            "e": facts.expires_at,
        }
        body = _b64(json.dumps(compact, separators=(",", ":"), ensure_ascii=False).encode())
        return f"{SESSION_PREFIX}{body}{self._mac(body)}"

    def _unseal(self, session_id: str) -> _Facts | None:
        sealed = session_id.removeprefix(SESSION_PREFIX)
        if sealed == session_id or len(sealed) <= _MAC_CHARS:
            return None
        body, mac = sealed[:-_MAC_CHARS], sealed[-_MAC_CHARS:]
        if not hmac.compare_digest(mac.encode(), self._mac(body).encode()):
            return None
        data = json.loads(_unb64(body))  # sealed by us: well-formed by construction
        return _Facts(data["o"], data["a"], data["n"], data["e"])

    def _facts(self, session_id: str) -> _Facts:
        facts = self._unseal(session_id)
        if facts is None:
            raise PaymentProviderError("no such sandbox checkout session")
        return facts

    def _hmac(self, label: str) -> bytes:
        return hmac.new(self._secret.encode(), label.encode(), hashlib.sha256).digest()

    def _mac(self, body: str) -> str:
        return _b64(self._hmac(f"checkout:{body}")[:_MAC_BYTES])

    def _digest(self, label: str) -> str:
        return self._hmac(label).hex()[:24]

    def _intent_of(self, session_id: str) -> str:
        return "pi_test_" + self._digest(f"payment_intent:{session_id}")

    async def _send(self, event_type: str, session_id: str, facts: _Facts, *, paid: bool) -> None:
        """Post one signed event, as Stripe does; a failure leaves the worker to re-fetch."""
        event = self._event(event_type, self._session_object(session_id, facts, paid=paid))
        payload = json.dumps(event, indent=2).encode()
        # Signed at the real time, as Stripe does: receivers check it against their own clock.
        header = stripe.WebhookSignature.generate_signature_header(payload.decode(), self._secret)
        try:
            status = await self._deliver(payload, header)
        except Exception:  # any transport failure: Stripe would retry, our worker re-fetches
            logger.warning("sandbox webhook %s not delivered", event["id"], exc_info=True)
            return
        if not 200 <= status < 300:
            logger.warning("sandbox webhook %s answered %s", event["id"], status)

    def _event(self, event_type: str, session: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"evt_test_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": stripe.api_version,
            "created": int(self._clock().timestamp()),
            "data": {"object": session},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }

    def _session_object(self, session_id: str, facts: _Facts, *, paid: bool) -> dict[str, Any]:
        order_pages = f"{self._base}/pay/{facts.order_id}"
        return {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": facts.amount_cents,
            "amount_total": facts.amount_cents,
            "cancel_url": f"{order_pages}/cancelled",
            "client_reference_id": facts.order_id,
            "created": facts.expires_at - int(self._ttl.total_seconds()),
            "currency": "pen",
            "customer": None,
            "expires_at": facts.expires_at,
            "livemode": False,
            "locale": "es",
            "metadata": {"order_id": facts.order_id},
            "mode": "payment",
            "payment_intent": self._intent_of(session_id) if paid else None,
            "payment_method_types": ["card"],
            "payment_status": "paid" if paid else "unpaid",
            "status": "complete" if paid else "expired",
            "success_url": f"{order_pages}/done",
            "ui_mode": "hosted",
            "url": None,  # Stripe clears the URL once a session is complete or expired
        }
