"""StripePayments: the core's ``Payments`` port on Stripe Checkout, through stripe-python's
async ``StripeClient`` (injected; never the SDK's global state).

- One Checkout Session per order, in PEN céntimos, card only, Visa and Mastercard only. The
  order id is the ``client_reference_id``, the metadata and the idempotency key, so a retried
  create returns the same session. ``expires_at`` derives from the order's creation time for the
  same reason: recomputing it on a retry would change the parameters under the same key.
- A refund uses the key ``refund:{order id}``: many calls, one refund.
- Every Stripe error becomes ``PaymentProviderError``; Stripe objects never leave this module.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import stripe
from stripe.params.checkout import SessionCreateParams

from conversations.errors import PaymentProviderError
from conversations.model import Checkout, Order
from conversations.ports import CheckoutView

logger = logging.getLogger(__name__)

# Stripe wants expires_at at least 30 minutes after its own "now": a minute of margin for clocks
# and for the time between creating the order and calling Stripe.
CHECKOUT_TTL = timedelta(minutes=31)
_ALREADY_REFUNDED = "charge_already_refunded"
PAID_WITH = "payment_intent.latest_charge"


class StripePayments:
    """Stripe Checkout (implements ``Payments``)."""

    def __init__(
        self, *, client: stripe.StripeClient, public_base_url: str, ttl: timedelta = CHECKOUT_TTL
    ) -> None:
        self._client = client
        self._base = public_base_url.rstrip("/")
        self._ttl = ttl

    async def open_checkout(self, order: Order) -> Checkout:
        """Create (or, on a retry, get back) the order's Checkout Session."""
        expires_at = (order.created_at + self._ttl).replace(microsecond=0)
        params = self._session_params(order, int(expires_at.timestamp()))
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": f"checkout:{order.id}"}
            )
        except stripe.StripeError as error:
            raise PaymentProviderError(f"checkout not created: {_code(error)}") from error
        logger.info("stripe checkout opened for order=%s", order.id)
        return Checkout(session.id, str(session.url), expires_at)

    async def retrieve(self, session_id: str) -> CheckoutView:
        """Fetch the session as Stripe has it now, with its payment's charge (card brand and the
        amount actually charged)."""
        try:
            session = await self._client.v1.checkout.sessions.retrieve_async(
                session_id, {"expand": [PAID_WITH]}
            )
        except stripe.StripeError as error:
            raise PaymentProviderError(f"checkout not retrieved: {_code(error)}") from error
        return _view(session.to_dict())

    async def expire(self, session_id: str) -> None:
        """Expire an open session; a session already complete or expired is left as it is."""
        try:
            await self._client.v1.checkout.sessions.expire_async(session_id)
        except stripe.InvalidRequestError as error:
            if (await self.retrieve(session_id)).open:
                raise PaymentProviderError(f"checkout not expired: {_code(error)}") from error
        except stripe.StripeError as error:
            raise PaymentProviderError(f"checkout not expired: {_code(error)}") from error

    async def refund(self, order: Order) -> str:
        """Refund the order's payment in full under the key ``refund:{order.id}``."""
        if not order.payment_ref:
            raise PaymentProviderError(f"order {order.id} has no payment to refund")
        try:
            refund = await self._client.v1.refunds.create_async(
                {"payment_intent": order.payment_ref, "metadata": {"order_id": order.id}},
                {"idempotency_key": f"refund:{order.id}"},
            )
        except stripe.InvalidRequestError as error:
            if error.code == _ALREADY_REFUNDED:  # refunded before the key's 24 h replay window
                return _ALREADY_REFUNDED
            raise PaymentProviderError(f"refund failed: {_code(error)}") from error
        except stripe.StripeError as error:
            raise PaymentProviderError(f"refund failed: {_code(error)}") from error
        logger.info("stripe refund %s for order=%s", refund.id, order.id)
        return refund.id

    def _session_params(self, order: Order, expires_at: int) -> SessionCreateParams:
        product = order.purchase.product
        pages = f"{self._base}/pay/{order.id}"
        return {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "pen",
                        "unit_amount": order.amount_cents,
                        "product_data": {"name": product.name},
                    },
                }
            ],
            "client_reference_id": order.id,
            "metadata": {"order_id": order.id},
            "payment_intent_data": {"metadata": {"order_id": order.id}},
            "expires_at": expires_at,
            "locale": "es",
            "allowed_payment_method_types": ["card"],
            "payment_method_options": {
                # Visa and Mastercard only.
                "card": {
                    "restrictions": {
                        "brands_blocked": ["american_express", "discover_global_network"]
                    }
                }
            },
            "success_url": f"{pages}/done",
            "cancel_url": f"{pages}/cancelled",
        }


def _view(session: dict[str, Any]) -> CheckoutView:
    intent = session.get("payment_intent")
    charge: dict[str, Any] = {}
    if isinstance(intent, dict):  # expanded, with its latest charge
        latest = intent.get("latest_charge")
        charge = latest if isinstance(latest, dict) else {}
        intent = intent.get("id")
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    return CheckoutView(
        session_id=session["id"],
        order_id=session.get("client_reference_id"),
        paid=session.get("payment_status") == "paid",
        open=session.get("status") == "open",
        # What was charged, when there is a charge; else what the session asks for.
        amount_cents=charge.get("amount", session.get("amount_total")) or 0,
        currency=charge.get("currency", session.get("currency")) or "",
        payment_ref=intent,
        card_brand=card.get("brand"),
    )


def _code(error: stripe.StripeError) -> str:
    return error.code or type(error).__name__
