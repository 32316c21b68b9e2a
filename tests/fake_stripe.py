"""FakeStripe: a local HTTP stand-in for the parts of Stripe's API the bot calls.

Served on 127.0.0.1 so the real stripe SDK talks HTTP to it. Objects are Stripe's own examples
(``tests/data/stripe_fixtures3.json``, with its licence) with the fields the bot relies on filled
in. A paid session has a PaymentIntent whose ``latest_charge`` is a Charge with the card's brand
in ``payment_method_details.card.brand``; ``expand[]=payment_intent.latest_charge`` on a session
retrieve embeds both, as Stripe does. Idempotency keys are
honoured as Stripe does: the same key with the same parameters replays the first answer, with
other parameters it is an ``idempotency_error``. Helpers complete a session as a paying customer
would and sign webhook events with the endpoint secret. Every request is counted.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

FIXTURES = Path(__file__).parent / "data" / "stripe_fixtures3.json"


def _fixture(name: str) -> dict[str, Any]:
    resources = json.loads(FIXTURES.read_text(encoding="utf-8"))["resources"]
    return copy.deepcopy(resources[name])


def _error(status: int, kind: str, message: str, code: str | None = None) -> JSONResponse:
    body = {"error": {"type": kind, "message": message, **({"code": code} if code else {})}}
    return JSONResponse(body, status_code=status)


def _nested(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn form keys such as ``line_items[0][price_data][currency]`` into nested dicts."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return root


@dataclass
class FakeStripe:
    """Checkout sessions, expiry and refunds, with Stripe's idempotency rules."""

    webhook_secret: str = "whsec_fake_endpoint_secret"
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    idempotency_keys: dict[str, list[str | None]] = field(default_factory=dict)  # by route
    created_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    _replays: dict[str, tuple[list[tuple[str, str]], int, Any]] = field(default_factory=dict)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/checkout/sessions", self._create_session, methods=["POST"]),
                Route("/v1/checkout/sessions/{id}", self._get_session, methods=["GET"]),
                Route("/v1/checkout/sessions/{id}/expire", self._expire, methods=["POST"]),
                Route("/v1/refunds", self._create_refund, methods=["POST"]),
            ]
        )

    @property
    def outbound(self) -> int:
        """How many requests the bot made to Stripe."""
        return sum(self.requests.values())

    # ------------------------------------------------------------ test helpers

    def complete(self, session_id: str, *, brand: str = "visa", **tampered: Any) -> None:
        """Pay the session as a customer would, with a card of ``brand`` (optionally with
        tampered fields: amount_total, currency, client_reference_id); the charge is of the
        session's amount and currency as they end up."""
        session = self.sessions[session_id]
        session.update(status="complete", payment_status="paid", url=None)
        session.update(tampered)
        intent, charge = _fixture("payment_intent"), _fixture("charge")
        intent_id, charge_id = f"pi_fake_{secrets.token_hex(8)}", f"ch_fake_{secrets.token_hex(8)}"
        money = {"amount": session["amount_total"], "currency": session["currency"]}
        intent.update(
            id=intent_id, status="succeeded", latest_charge=charge_id,
            amount_received=money["amount"], metadata=session["metadata"],
            created=int(time.time()), **money,
        )  # fmt: skip
        charge["payment_method_details"]["card"].update(brand=brand, network=brand)
        charge.update(
            id=charge_id, payment_intent=intent_id, status="succeeded", paid=True, captured=True,
            amount_captured=money["amount"], metadata=session["metadata"], **money,
        )  # fmt: skip
        self.payment_intents[intent_id], self.charges[charge_id] = intent, charge
        session["payment_intent"] = intent_id

    def fail_async(self, session_id: str) -> None:
        """End checkout with an asynchronous payment processing or failed: complete but unpaid."""
        self.sessions[session_id].update(status="complete", payment_status="unpaid", url=None)

    def event(self, event_type: str, session_id: str) -> bytes:
        """A webhook event body for the session as it is now."""
        event = _fixture("event")
        event.update(
            id=f"evt_fake_{secrets.token_hex(8)}",
            type=event_type,
            api_version=stripe.api_version,
            created=int(time.time()),
            data={"object": copy.deepcopy(self.sessions[session_id])},
        )
        return json.dumps(event).encode()

    def sign(self, payload: bytes, *, secret: str | None = None, at: int | None = None) -> str:
        """A Stripe-Signature header for the payload, as Stripe computes it."""
        timestamp = int(time.time()) if at is None else at
        signed = f"{timestamp}.{payload.decode()}"
        key = (secret or self.webhook_secret).encode()
        mac = hmac.new(key, signed.encode(), hashlib.sha256).hexdigest()
        return f"t={timestamp},v1={mac}"

    def charged(self, session_id: str) -> int:
        """Céntimos the customer paid through the session (0 if unpaid)."""
        session = self.sessions.get(session_id)
        return session["amount_total"] if session and session["payment_status"] == "paid" else 0

    def refunded(self, payment_intent: str | None) -> int:
        return sum(
            r["amount"] for r in self.refunds.values() if r["payment_intent"] == payment_intent
        )

    # ------------------------------------------------------------ routes

    async def _replayed(self, request: Request, route: str) -> tuple[list, Response | None]:
        self.requests[route] += 1
        pairs = sorted(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        key = request.headers.get("idempotency-key")
        self.idempotency_keys.setdefault(route, []).append(key)
        if key is None or key not in self._replays:
            return pairs, None
        first_pairs, status, body = self._replays[key]
        if first_pairs != pairs:
            message = "Keys for idempotent requests can only be used with the same parameters."
            return pairs, _error(400, "idempotency_error", message)
        return pairs, JSONResponse(body, status, headers={"idempotent-replayed": "true"})

    def _remember(self, request: Request, pairs: list, status: int, body: Any) -> JSONResponse:
        key = request.headers.get("idempotency-key")
        if key is not None:
            self._replays[key] = (pairs, status, body)
        return JSONResponse(body, status)

    async def _create_session(self, request: Request) -> Response:
        pairs, replay = await self._replayed(request, "create_session")
        if replay is not None:
            return replay
        params = _nested(pairs)
        if "payment_method_types" in params:  # removed from Checkout Session create
            return _error(400, "invalid_request_error", "Received unknown parameter")
        item = params["line_items"]["0"]
        session = _fixture("checkout.session")
        session_id = f"cs_test_fake{secrets.token_hex(12)}"
        session.update(
            id=session_id,
            amount_subtotal=int(item["price_data"]["unit_amount"]) * int(item["quantity"]),
            amount_total=int(item["price_data"]["unit_amount"]) * int(item["quantity"]),
            currency=item["price_data"]["currency"],
            client_reference_id=params.get("client_reference_id"),
            metadata=params.get("metadata", {}),
            expires_at=int(params["expires_at"]),
            locale=params.get("locale"),
            success_url=params["success_url"],
            cancel_url=params["cancel_url"],
            payment_intent=None,
            payment_status="unpaid",
            status="open",
            url=f"https://checkout.stripe.com/c/pay/{session_id}",
        )
        self.sessions[session_id] = session
        self.created_params[session_id] = params
        return self._remember(request, pairs, 200, session)

    async def _get_session(self, request: Request) -> Response:
        self.requests["retrieve_session"] += 1
        session = self.sessions.get(request.path_params["id"])
        if session is None:
            return _error(
                404, "invalid_request_error", "No such checkout.session", "resource_missing"
            )
        expand = {v for k, v in request.query_params.multi_items() if k.startswith("expand[")}
        if not expand <= {"payment_intent", "payment_intent.latest_charge"}:
            return _error(
                400, "invalid_request_error", f"This property cannot be expanded ({expand})."
            )
        session = copy.deepcopy(session)
        intent = self.payment_intents.get(session["payment_intent"] or "")
        if expand and intent is not None:
            session["payment_intent"] = intent = copy.deepcopy(intent)
            if "payment_intent.latest_charge" in expand:
                intent["latest_charge"] = copy.deepcopy(self.charges[intent["latest_charge"]])
        return JSONResponse(session)

    async def _expire(self, request: Request) -> Response:
        pairs, replay = await self._replayed(request, "expire_session")
        if replay is not None:
            return replay
        session = self.sessions.get(request.path_params["id"])
        if session is None:
            return _error(
                404, "invalid_request_error", "No such checkout.session", "resource_missing"
            )
        if session["status"] != "open":
            return _error(400, "invalid_request_error", "Only open sessions can be expired.")
        session.update(status="expired", url=None)
        return self._remember(request, pairs, 200, session)

    async def _create_refund(self, request: Request) -> Response:
        pairs, replay = await self._replayed(request, "create_refund")
        if replay is not None:
            return replay
        params = _nested(pairs)
        intent = params.get("payment_intent")
        paid = [s for s in self.sessions.values() if s["payment_intent"] == intent]
        if not paid:
            return _error(
                400, "invalid_request_error", "No such payment_intent", "resource_missing"
            )
        if self.refunded(intent) >= paid[0]["amount_total"]:
            message = "Charge has already been refunded."
            return _error(400, "invalid_request_error", message, "charge_already_refunded")
        refund = _fixture("refund")
        refund.update(
            id=f"re_fake_{secrets.token_hex(8)}",
            amount=paid[0]["amount_total"],
            currency=paid[0]["currency"],
            payment_intent=intent,
            metadata=params.get("metadata", {}),
            created=int(time.time()),
        )
        self.refunds[refund["id"]] = refund
        return self._remember(request, pairs, 200, refund)
