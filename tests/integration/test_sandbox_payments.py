"""The sandbox gateway and its hosted page: cards, sessions, signed webhooks and refunds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
import stripe
from starlette.applications import Starlette

from adapters.sandbox_payments import PageState, PayOutcome, SandboxPayments
from adapters.stripe_events import payment_event
from bot.sandbox_page import sandbox_routes
from conversations.catalog import credit_product
from conversations.errors import PaymentProviderError
from conversations.model import (
    Channel,
    ChatKey,
    Checkout,
    DocType,
    Line,
    Order,
    OrderState,
    PaymentEventKind,
    Purchase,
)
from tests.fakes import CapturedWebhooks, MovableClock

SECRET = "whsec_test_sandbox_secret"
BASE = "https://bot.example.pe"
GOOD_CARD = {"number": "4242 4242 4242 4242", "expiry": "12/34", "cvc": "123", "name": "Ana Díaz"}


@dataclass
class Sandbox:
    gateway: SandboxPayments
    webhooks: CapturedWebhooks
    clock: MovableClock

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(payload) for payload, _ in self.webhooks.posted]


def make_gateway(webhooks: CapturedWebhooks, clock: MovableClock) -> SandboxPayments:
    return SandboxPayments(
        public_base_url=BASE, webhook_secret=SECRET, deliver=webhooks, clock=clock
    )


def make_order(order_id: str = "ord-1", soles: int = 10) -> Order:
    line = Line("987654321", "Ana Díaz", DocType.DNI, "12345678")
    purchase = Purchase(line, credit_product(soles))
    key = ChatKey(Channel.TELEGRAM, "42")
    return Order(
        order_id, key, purchase, OrderState.AWAITING_PAYMENT, created_at=MovableClock().now
    )


@pytest.fixture
def sandbox() -> Sandbox:
    webhooks, clock = CapturedWebhooks(), MovableClock()
    return Sandbox(make_gateway(webhooks, clock), webhooks, clock)


@pytest.fixture
async def checkout(sandbox: Sandbox) -> Checkout:
    return await sandbox.gateway.open_checkout(make_order())


@pytest.fixture
async def browser(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=sandbox_routes(sandbox.gateway))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


def tampered(session_id: str) -> str:
    """Change one character of the sealed facts, keeping the MAC."""
    position = len("cs_test_") + 5
    swapped = "A" if session_id[position] != "A" else "B"
    return session_id[:position] + swapped + session_id[position + 1 :]


# --- sessions -------------------------------------------------------------------------------


async def test_open_checkout_links_to_the_sandbox_page_for_thirty_minutes(sandbox: Sandbox):
    checkout = await sandbox.gateway.open_checkout(make_order())

    assert checkout.session_id.startswith("cs_test_")
    assert len(checkout.session_id) < 200
    assert checkout.url == f"{BASE}/sandbox/checkout/{checkout.session_id}"
    assert checkout.expires_at == sandbox.clock.now + timedelta(minutes=30)


async def test_retrieve_an_open_session(sandbox: Sandbox, checkout: Checkout):
    view = await sandbox.gateway.retrieve(checkout.session_id)

    assert (view.order_id, view.amount_cents, view.currency) == ("ord-1", 1000, "pen")
    assert view.open and not view.paid and view.payment_ref is None


async def test_session_survives_a_restart_with_the_same_secret(
    sandbox: Sandbox, checkout: Checkout
):
    restarted = make_gateway(CapturedWebhooks(), sandbox.clock)

    view = await restarted.retrieve(checkout.session_id)

    assert view.order_id == "ord-1" and view.open
    assert await restarted.page(checkout.session_id) == await sandbox.gateway.page(
        checkout.session_id
    )


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(tampered, id="one-char-changed"),
        pytest.param(lambda sid: sid[:-1], id="truncated"),
        pytest.param(lambda sid: sid.replace("cs_test_", "cs_live_"), id="other-prefix"),
        pytest.param(lambda sid: "cs_test_", id="empty"),
        pytest.param(lambda sid: "cs_test_ñandú" + sid[-22:], id="non-ascii"),
        pytest.param(lambda sid: "nonsense", id="garbage"),
    ],
)
async def test_forged_session_ids_are_refused(sandbox: Sandbox, checkout: Checkout, forge):
    forged = forge(checkout.session_id)

    with pytest.raises(PaymentProviderError):
        await sandbox.gateway.retrieve(forged)
    with pytest.raises(PaymentProviderError):
        await sandbox.gateway.pay(forged, **GOOD_CARD)
    assert await sandbox.gateway.page(forged) is None
    assert sandbox.webhooks.posted == []


async def test_an_id_sealed_with_another_secret_is_refused(sandbox: Sandbox):
    other = SandboxPayments(
        public_base_url=BASE,
        webhook_secret="whsec_other",
        deliver=CapturedWebhooks(),
        clock=sandbox.clock,
    )
    foreign = await other.open_checkout(make_order())

    with pytest.raises(PaymentProviderError):
        await sandbox.gateway.retrieve(foreign.session_id)


# --- cards ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "outcome"),
    [
        pytest.param({}, PayOutcome.APPROVED, id="visa-4242"),
        pytest.param({"number": "5555 5555 5555 4444"}, PayOutcome.APPROVED, id="mastercard-5555"),
        pytest.param({"number": "2223003122003222"}, PayOutcome.APPROVED, id="mastercard-2-series"),
        pytest.param({"number": "4242-4242-4242-4242"}, PayOutcome.APPROVED, id="dashes"),
        pytest.param({"number": "4000000000000002"}, PayOutcome.DECLINED, id="declined"),
        pytest.param({"number": "378282246310005"}, PayOutcome.NOT_ALLOWED, id="amex"),
        pytest.param({"number": "6011111111111117"}, PayOutcome.NOT_ALLOWED, id="discover"),
        pytest.param({"number": "3056930009020004"}, PayOutcome.NOT_ALLOWED, id="diners"),
        pytest.param({"number": "3566002020360505"}, PayOutcome.NOT_ALLOWED, id="jcb"),
        pytest.param({"number": "4242 4242 4242 4241"}, PayOutcome.INVALID_NUMBER, id="luhn"),
        pytest.param({"number": "4242 4242 42"}, PayOutcome.INVALID_NUMBER, id="too-short"),
        pytest.param({"number": "4242x4242x4242x4242"}, PayOutcome.INVALID_NUMBER, id="letters"),
        pytest.param(
            {"number": "４２４２４２４２４２４２４２４２"}, PayOutcome.INVALID_NUMBER, id="wide"
        ),
        pytest.param({"expiry": "10/26"}, PayOutcome.INVALID_EXPIRY, id="expiry-past"),
        pytest.param({"expiry": "11/26"}, PayOutcome.APPROVED, id="expiry-this-month"),
        pytest.param({"expiry": "13/30"}, PayOutcome.INVALID_EXPIRY, id="expiry-month-13"),
        pytest.param({"expiry": "1230"}, PayOutcome.INVALID_EXPIRY, id="expiry-no-slash"),
        pytest.param({"cvc": "12"}, PayOutcome.INVALID_CVC, id="cvc-short"),
        pytest.param({"cvc": "1234"}, PayOutcome.INVALID_CVC, id="cvc-long"),
        pytest.param({"cvc": "12a"}, PayOutcome.INVALID_CVC, id="cvc-letter"),
        pytest.param({"name": "   "}, PayOutcome.MISSING_NAME, id="no-name"),
    ],
)
async def test_card_matrix(sandbox: Sandbox, checkout: Checkout, typed: dict[str, str], outcome):
    outcome_seen = await sandbox.gateway.pay(checkout.session_id, **{**GOOD_CARD, **typed})

    assert outcome_seen is outcome
    paid = outcome is PayOutcome.APPROVED
    assert (await sandbox.gateway.retrieve(checkout.session_id)).paid is paid
    assert len(sandbox.webhooks.posted) == (1 if paid else 0)


async def test_a_paid_session_reports_its_payment_intent(sandbox: Sandbox, checkout: Checkout):
    await sandbox.gateway.pay(checkout.session_id, **GOOD_CARD)

    view = await sandbox.gateway.retrieve(checkout.session_id)

    assert view.paid and not view.open
    assert view.payment_ref is not None and view.payment_ref.startswith("pi_test_")
    assert (await sandbox.gateway.page(checkout.session_id)).state is PageState.PAID


async def test_paying_twice_sends_one_completed_event(sandbox: Sandbox, checkout: Checkout):
    first = await sandbox.gateway.pay(checkout.session_id, **GOOD_CARD)
    second = await sandbox.gateway.pay(checkout.session_id, **GOOD_CARD)

    assert (first, second) == (PayOutcome.APPROVED, PayOutcome.ALREADY_PAID)
    assert [event["type"] for event in sandbox.events()] == ["checkout.session.completed"]


async def test_concurrent_submits_pay_once(sandbox: Sandbox, checkout: Checkout):
    outcomes = await asyncio.gather(
        *(sandbox.gateway.pay(checkout.session_id, **GOOD_CARD) for _ in range(5))
    )

    assert sorted(outcomes) == sorted([PayOutcome.APPROVED] + [PayOutcome.ALREADY_PAID] * 4)
    assert len(sandbox.webhooks.posted) == 1


async def test_paying_after_the_ttl_is_refused_without_an_event(
    sandbox: Sandbox, checkout: Checkout
):
    sandbox.clock.advance(minutes=30)

    outcome = await sandbox.gateway.pay(checkout.session_id, **GOOD_CARD)

    assert outcome is PayOutcome.EXPIRED
    assert sandbox.webhooks.posted == []
    assert not (await sandbox.gateway.retrieve(checkout.session_id)).open


async def test_a_failed_delivery_does_not_undo_the_payment(sandbox: Sandbox):
    async def unreachable(payload: bytes, signature: str) -> int:
        raise httpx.ConnectError("connection refused")

    gateway = SandboxPayments(
        public_base_url=BASE, webhook_secret=SECRET, deliver=unreachable, clock=sandbox.clock
    )
    checkout = await gateway.open_checkout(make_order())

    outcome = await gateway.pay(checkout.session_id, **GOOD_CARD)

    assert outcome is PayOutcome.APPROVED
    assert (await gateway.retrieve(checkout.session_id)).paid


# --- expiry ---------------------------------------------------------------------------------


async def test_expire_sends_one_expired_event_then_refuses_payment(
    sandbox: Sandbox, checkout: Checkout
):
    await sandbox.gateway.expire(checkout.session_id)
    await sandbox.gateway.expire(checkout.session_id)

    outcome = await sandbox.gateway.pay(checkout.session_id, **GOOD_CARD)

    assert outcome is PayOutcome.EXPIRED
    assert [event["type"] for event in sandbox.events()] == ["checkout.session.expired"]
    view = await sandbox.gateway.retrieve(checkout.session_id)
    assert not view.open and not view.paid


async def test_expire_after_payment_changes_nothing(sandbox: Sandbox, checkout: Checkout):
    await sandbox.gateway.pay(checkout.session_id, **GOOD_CARD)

    await sandbox.gateway.expire(checkout.session_id)

    assert [event["type"] for event in sandbox.events()] == ["checkout.session.completed"]
    assert (await sandbox.gateway.retrieve(checkout.session_id)).paid


async def test_expire_of_a_forged_id_raises(sandbox: Sandbox, checkout: Checkout):
    with pytest.raises(PaymentProviderError):
        await sandbox.gateway.expire(tampered(checkout.session_id))


# --- webhooks -------------------------------------------------------------------------------


async def test_completed_event_is_signed_like_stripe_and_shaped_like_stripe(
    sandbox: Sandbox, checkout: Checkout
):
    await sandbox.gateway.pay(checkout.session_id, **GOOD_CARD)
    [(payload, header)] = sandbox.webhooks.posted

    assert stripe.WebhookSignature.verify_header(payload, header, SECRET, tolerance=300)
    event = json.loads(payload)
    assert event["id"].startswith("evt_")
    assert (event["object"], event["type"]) == ("event", "checkout.session.completed")
    assert event["livemode"] is False and event["api_version"] == stripe.api_version
    assert {"created", "pending_webhooks", "request"} <= event.keys()
    session = event["data"]["object"]
    assert session["id"] == checkout.session_id and session["object"] == "checkout.session"
    assert (session["amount_total"], session["amount_subtotal"], session["currency"]) == (
        1000,
        1000,
        "pen",
    )
    assert session["client_reference_id"] == "ord-1"
    assert session["metadata"] == {"order_id": "ord-1"}
    assert (session["mode"], session["payment_status"], session["status"]) == (
        "payment",
        "paid",
        "complete",
    )
    view = await sandbox.gateway.retrieve(checkout.session_id)
    assert session["payment_intent"] == view.payment_ref
    assert session["expires_at"] == int(checkout.expires_at.timestamp())
    assert session["success_url"] == f"{BASE}/pay/ord-1/done"
    assert session["cancel_url"] == f"{BASE}/pay/ord-1/cancelled"


async def test_expired_event_is_signed_and_unpaid(sandbox: Sandbox, checkout: Checkout):
    await sandbox.gateway.expire(checkout.session_id)
    [(payload, header)] = sandbox.webhooks.posted

    assert stripe.WebhookSignature.verify_header(payload, header, SECRET, tolerance=300)
    session = json.loads(payload)["data"]["object"]
    assert (session["payment_status"], session["status"]) == ("unpaid", "expired")
    assert session["payment_intent"] is None


async def test_events_do_not_verify_with_another_secret(sandbox: Sandbox, checkout: Checkout):
    await sandbox.gateway.pay(checkout.session_id, **GOOD_CARD)
    [(payload, header)] = sandbox.webhooks.posted

    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(payload, header, "whsec_other", tolerance=300)


async def test_events_read_as_payment_events_by_the_webhook_parser(
    sandbox: Sandbox, checkout: Checkout
):
    await sandbox.gateway.pay(checkout.session_id, **GOOD_CARD)
    [(payload, _)] = sandbox.webhooks.posted

    event = payment_event(json.loads(payload))

    assert event is not None
    assert (event.kind, event.session_id, event.order_id) == (
        PaymentEventKind.COMPLETED,
        checkout.session_id,
        "ord-1",
    )


async def test_events_never_carry_card_data(sandbox: Sandbox, checkout: Checkout):
    await sandbox.gateway.pay(checkout.session_id, **{**GOOD_CARD, "number": "5555555555554444"})
    [(payload, _)] = sandbox.webhooks.posted

    assert b"5555555555554444" not in payload and b"555555555555" not in payload
    assert "Ana Díaz".encode() not in payload


# --- refunds --------------------------------------------------------------------------------


async def paid_order(sandbox: Sandbox) -> Order:
    order = make_order()
    checkout = await sandbox.gateway.open_checkout(order)
    await sandbox.gateway.pay(checkout.session_id, **GOOD_CARD)
    view = await sandbox.gateway.retrieve(checkout.session_id)
    return replace(
        order, state=OrderState.TOPUP_FAILED, checkout=checkout, payment_ref=view.payment_ref
    )


async def test_refund_is_idempotent_even_when_called_concurrently(sandbox: Sandbox):
    order = await paid_order(sandbox)

    refund_ids = await asyncio.gather(*(sandbox.gateway.refund(order) for _ in range(10)))

    assert len(set(refund_ids)) == 1 and refund_ids[0].startswith("re_test_")
    assert sandbox.gateway.refunds == {"ord-1": 1000}


async def test_refund_after_a_restart_keeps_its_id(sandbox: Sandbox):
    order = await paid_order(sandbox)
    before = await sandbox.gateway.refund(order)
    restarted = make_gateway(CapturedWebhooks(), sandbox.clock)

    after = await restarted.refund(order)

    assert after == before
    assert restarted.refunds == {"ord-1": 1000}


async def test_refund_of_an_unpaid_order_raises(sandbox: Sandbox, checkout: Checkout):
    order = replace(make_order(), checkout=checkout)

    with pytest.raises(PaymentProviderError):
        await sandbox.gateway.refund(order)
    assert sandbox.gateway.refunds == {}


async def test_refund_with_a_made_up_payment_ref_raises(sandbox: Sandbox, checkout: Checkout):
    order = replace(make_order(), checkout=checkout, payment_ref="pi_test_made_up")

    with pytest.raises(PaymentProviderError):
        await sandbox.gateway.refund(order)
    assert sandbox.gateway.refunds == {}


# --- the hosted page ------------------------------------------------------------------------


async def test_page_shows_the_form_for_an_open_session(
    browser: httpx.AsyncClient, checkout: Checkout
):
    response = await browser.get(f"/sandbox/checkout/{checkout.session_id}")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    for text in (
        "Pago de prueba",
        "Recarga de saldo S/ 10.00",
        "Total: S/ 10.00",
        "Pagar S/ 10.00",
    ):
        assert text in response.text
    for field in ('name="number"', 'name="expiry"', 'name="cvc"', 'name="name"', "MM/AA"):
        assert field in response.text
    assert "Página de pruebas: usa 4242 4242 4242 4242" in response.text


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_page_of_an_unknown_or_forged_id_is_404(
    browser: httpx.AsyncClient, checkout: Checkout, method: str
):
    for session_id in ("cs_test_nope", tampered(checkout.session_id)):
        response = await browser.request(method, f"/sandbox/checkout/{session_id}", data=GOOD_CARD)

        assert response.status_code == 404
        assert "Este enlace de pago no existe" in response.text


async def test_page_of_an_expired_session(
    browser: httpx.AsyncClient, sandbox: Sandbox, checkout: Checkout
):
    sandbox.clock.advance(minutes=31)

    response = await browser.get(f"/sandbox/checkout/{checkout.session_id}")

    assert "Este enlace de pago venció. No se realizó ningún cargo." in response.text
    assert "<form" not in response.text


async def test_paying_on_the_page(browser: httpx.AsyncClient, sandbox: Sandbox, checkout: Checkout):
    response = await browser.post(f"/sandbox/checkout/{checkout.session_id}", data=GOOD_CARD)

    assert response.status_code == 200
    assert "¡Pago aprobado!" in response.text
    assert "Vuelve al chat: te confirmaremos la recarga en unos segundos." in response.text
    assert "4242" not in response.text
    assert [event["type"] for event in sandbox.events()] == ["checkout.session.completed"]
    again = await browser.get(f"/sandbox/checkout/{checkout.session_id}")
    assert "Pago recibido" in again.text and "<form" not in again.text


async def test_page_refuses_amex_without_echoing_the_card(
    browser: httpx.AsyncClient, sandbox: Sandbox, checkout: Checkout
):
    typed = {**GOOD_CARD, "number": "3782 822463 10005", "expiry": "09/31", "cvc": "987"}

    response = await browser.post(f"/sandbox/checkout/{checkout.session_id}", data=typed)

    assert "Solo aceptamos Visa o Mastercard" in response.text
    assert "Pagar S/ 10.00" in response.text and 'value="Ana Díaz"' in response.text
    for secret in ("3782", "10005", "09/31", "987"):
        assert secret not in response.text
    assert sandbox.webhooks.posted == []


async def test_page_reports_a_declined_card(
    browser: httpx.AsyncClient, sandbox: Sandbox, checkout: Checkout
):
    typed = {**GOOD_CARD, "number": "4000 0000 0000 0002"}

    response = await browser.post(f"/sandbox/checkout/{checkout.session_id}", data=typed)

    assert "Tu tarjeta fue rechazada" in response.text
    assert "0002" not in response.text
    assert sandbox.webhooks.posted == []


async def test_page_escapes_what_it_shows(browser: httpx.AsyncClient, sandbox: Sandbox):
    order = make_order()
    product = replace(order.purchase.product, name="<b>Paquete</b>")
    order = replace(order, purchase=replace(order.purchase, product=product))
    checkout = await sandbox.gateway.open_checkout(order)
    typed = {**GOOD_CARD, "cvc": "1", "name": '<script>alert("x")</script>'}

    response = await browser.post(f"/sandbox/checkout/{checkout.session_id}", data=typed)

    assert "<script>" not in response.text and "<b>" not in response.text
    assert "&lt;script&gt;" in response.text and "&lt;b&gt;Paquete&lt;/b&gt;" in response.text


async def test_page_after_payment_or_expiry_does_not_charge_again(
    browser: httpx.AsyncClient, sandbox: Sandbox, checkout: Checkout
):
    await browser.post(f"/sandbox/checkout/{checkout.session_id}", data=GOOD_CARD)
    paid_again = await browser.post(f"/sandbox/checkout/{checkout.session_id}", data=GOOD_CARD)
    other = await sandbox.gateway.open_checkout(make_order("ord-2"))
    await sandbox.gateway.expire(other.session_id)
    expired = await browser.post(f"/sandbox/checkout/{other.session_id}", data=GOOD_CARD)

    assert "Pago recibido" in paid_again.text
    assert "Este enlace de pago venció" in expired.text
    assert [event["type"] for event in sandbox.events()] == [
        "checkout.session.completed",
        "checkout.session.expired",
    ]
