"""Reduce a verified Stripe event (a parsed JSON dict) to the core's PaymentEvent."""

from __future__ import annotations

from typing import Any

from conversations.model import PaymentEvent, PaymentEventKind

_KINDS = {
    "checkout.session.completed": PaymentEventKind.COMPLETED,
    "checkout.session.async_payment_succeeded": PaymentEventKind.ASYNC_SUCCEEDED,
    "checkout.session.async_payment_failed": PaymentEventKind.ASYNC_FAILED,
    "checkout.session.expired": PaymentEventKind.EXPIRED,
}


def payment_event(data: Any) -> PaymentEvent | None:
    """Return the event fulfilment cares about, or None for other types and odd shapes."""
    if not isinstance(data, dict) or data.get("type") not in _KINDS:
        return None
    session = (data.get("data") or {}).get("object") or {}
    event_id, session_id = data.get("id"), session.get("id")
    if not isinstance(event_id, str) or not isinstance(session_id, str):
        return None
    order_id = session.get("client_reference_id")
    return PaymentEvent(
        event_id=event_id,
        kind=_KINDS[data["type"]],
        session_id=session_id,
        order_id=order_id if isinstance(order_id, str) else None,
    )
