"""POST /payments/stripe/webhook: verify the raw body, record the event, push its order on.

The order is pushed on (top-up, confirmation) after Stripe has its 2xx, in a background task; if
that fails, the worker is woken to try again at once instead of at its next periodic pass.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

import stripe
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from adapters.stripe_events import payment_event
from conversations.model import Order, PaymentEvent

logger = logging.getLogger(__name__)

SIGNATURE_TOLERANCE_SECONDS = 300
PATH = "/payments/stripe/webhook"
MAX_BODY = 128 * 1024  # Stripe's events run to a few kB; a checkout session with room to spare


def stripe_webhook(
    *,
    secret: str,
    record: Callable[[PaymentEvent], Awaitable[Order | None]],
    push: Callable[[str, Order | None], Awaitable[None]],
    kick: Callable[[], None],
) -> Callable[[Request], Awaitable[Response]]:
    """Build the webhook endpoint; nothing is parsed or written before the signature holds."""

    async def push_on(order_id: str, claimed: Order | None) -> None:
        try:
            await push(order_id, claimed)
        except Exception:
            logger.exception("could not push order=%s on: the worker will", order_id)
            kick()

    async def endpoint(request: Request) -> Response:
        if "stripe-signature" not in request.headers:  # refused before the body is read
            return JSONResponse({"error": "invalid signature or body"}, status_code=400)
        payload = await request.body()
        try:
            stripe.WebhookSignature.verify_header(
                payload, request.headers.get("stripe-signature"), secret,
                tolerance=SIGNATURE_TOLERANCE_SECONDS,
            )  # fmt: skip
            data = json.loads(payload)
        except (stripe.SignatureVerificationError, ValueError):
            return JSONResponse({"error": "invalid signature or body"}, status_code=400)
        event = payment_event(data)
        if event is not None:
            logger.info("stripe event %s (%s) order=%s", event.event_id, event.kind, event.order_id)
            claimed = await record(event)
            if event.order_id:
                return JSONResponse(
                    {"received": True},
                    background=BackgroundTask(push_on, event.order_id, claimed),
                )
        return JSONResponse({"received": True})

    return endpoint
