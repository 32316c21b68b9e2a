"""The conversation issue's findings, replayed through the real chat service as typed.

Each test failed on the dialogue before reading.py (commit 7a58bb2) and passes now.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.app import Overrides, Services, build
from conversations.model import OrderState
from tests.integration.live.conftest import RecordingAlerts
from tests.service.chat import NEW_CUSTOMER_TO_SUMMARY, Customer

NOT_CHARGED = "no se realizó ningún cargo"
PENDING_LINK = "sigue activo"


def _held_purchase() -> list[str]:
    """A new customer's purchase for 987 650 002: the sandbox's empty wallet holds it."""
    steps = list(NEW_CUSTOMER_TO_SUMMARY)
    steps[2] = "987 650 002"
    return [*steps, "Confirmar"]


async def test_finding_1_a_paid_held_order_is_never_called_unpaid(services, messenger):
    customer = Customer(services, messenger)
    await customer.say(*_held_purchase())
    await customer.pay()

    greeted = await customer.say("hola")
    cancelled = await customer.say("/cancelar")

    said = [r.text for r in greeted + cancelled]
    assert not any(PENDING_LINK in t or NOT_CHARGED in t for t in said), said
    assert not any(r.link for r in greeted + cancelled)  # the paid link is not offered again
    assert "Ya recibimos tu pago de S/ 10.00" in greeted[0].text
    assert "ya está pagado" in cancelled[0].text and "devolvemos S/ 10.00" in cancelled[0].text


class HeldWebhooks:
    """The gateway's webhooks kept back: a payment that lands after /cancelar."""

    def __init__(self) -> None:
        self.kept: list[tuple[bytes, str]] = []

    async def __call__(self, payload: bytes, signature: str) -> int:
        self.kept.append((payload, signature))
        return 200


@pytest.fixture
async def late(settings, clock, messenger) -> AsyncIterator[tuple[Services, HeldWebhooks, object]]:
    held = HeldWebhooks()
    app = build(settings, overrides=Overrides(clock=clock, messenger=messenger, deliver=held))
    async with app.state.services.lifetime(background=False) as services:
        yield services, held, app


async def test_finding_1_a_payment_landing_after_cancelar_is_not_called_free(late, messenger):
    services, held, app = late
    customer = Customer(services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")
    await customer.pay()  # charged at the gateway; its webhook is late

    cancelled = await customer.say("cancelar")
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://bot.test") as http:
        for payload, signature in held.kept:
            headers = {"stripe-signature": signature, "content-type": "application/json"}
            await http.post("/payments/stripe/webhook", content=payload, headers=headers)
    await services.worker.run_once()

    assert NOT_CHARGED not in cancelled[0].text
    assert "Si alcanzaste a pagar" in cancelled[0].text or "ya está pagado" in cancelled[0].text
    assert any("Recarga exitosa" in t for t in customer.texts())


async def test_finding_1_cancelling_an_unpaid_link_says_no_charge(services, messenger):
    customer = Customer(services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")

    [cancelled] = await customer.say("/cancelar")

    assert NOT_CHARGED in cancelled.text and "S/ 10.00" in cancelled.text


@pytest.mark.parametrize("typed", ["quiero hablar con un asesor", "hola", "no sé", "Juan2"])
async def test_finding_4_words_that_are_no_name_are_not_taken_as_the_owner(
    services, messenger, typed
):
    customer = Customer(services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY[:3])

    await customer.say(typed)
    session = await services.store.load(customer.key)

    assert session.draft.owner_name is None


async def test_finding_4_one_word_is_asked_again_and_taken_when_repeated(services, messenger):
    customer = Customer(services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY[:3])

    [asked] = await customer.say("Madonna")
    await customer.say("Madonna")

    assert "nombres y apellidos" in asked.text
    assert (await services.store.load(customer.key)).draft.owner_name == "Madonna"


async def test_finding_4_saved_owner_data_can_be_corrected(services, messenger):
    customer = Customer(services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY)

    await customer.say("Cambiar", "Titular", "Rosa Pérez Ñique", "DNI 4567 8912", "Confirmar")
    session = await services.store.load(customer.key)

    assert [(ln.owner_name, ln.doc_number) for ln in session.profile.lines] == [
        ("Rosa Pérez Ñique", "45678912")
    ]


@pytest.mark.parametrize(
    ("before", "typed", "understood"),
    [
        (5, "carnet de extranjería", "Carné de Extranjería"),
        (5, "DNI 45678912", "¿Qué quieres comprar"),
        (2, "mi número es 987654321", "nombres y apellidos"),
        (7, "diez soles", "S/ 10.00"),
        (7, "Paquete Redes", "Paquete Redes"),
        (8, "atrás", "¿De cuánto es la recarga?"),
        (8, "volver", "¿De cuánto es la recarga?"),
        (1, "si acepto", "número Claro"),
    ],
)
async def test_finding_5_what_peruvians_type_is_understood(
    services, messenger, before, typed, understood
):
    customer = Customer(services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY[:before])

    replies = await customer.say(typed)

    assert understood in replies[-1].text, replies[-1].text
    assert "No te entendí" not in replies[-1].text


async def test_finding_5_a_one_message_purchase_reaches_the_summary(services, messenger):
    customer = Customer(services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")
    await customer.pay()

    [summary] = await customer.say("recarga 20 soles al 987654321")

    assert "Revisa tu compra" in summary.text and "S/ 20.00" in summary.text


async def test_finding_5_thanks_after_a_recharge_is_no_new_greeting(services, messenger):
    customer = Customer(services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")
    await customer.pay()
    await customer.say("No, gracias")  # the promo question

    [answer] = await customer.say("gracias")

    assert "De nada" in answer.text and "Hola de nuevo" not in answer.text


async def test_finding_5_help_in_an_idle_chat_is_sent_once(services, messenger):
    customer = Customer(services, messenger)

    said = await customer.say("ayuda")

    assert len(said) == 1


async def test_finding_5_changing_the_number_mid_purchase_does_not_greet_again(services, messenger):
    customer = Customer(services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY, "Confirmar")
    await customer.pay()
    await customer.say("No, gracias", "recargar", "Repetir última recarga")

    *_, asked = await customer.say("Cambiar", "Número")

    assert "Hola" not in asked.text and "¿Qué número recargamos?" in asked.text


@pytest.fixture
async def with_operators(settings, clock, messenger):
    alerts = RecordingAlerts()
    app = build(settings, overrides=Overrides(clock=clock, messenger=messenger, alerts=alerts))
    async with app.state.services.lifetime(background=False) as services:
        yield services, alerts


async def test_finding_6_a_person_on_request_then_back_to_the_bot(with_operators, messenger):
    services, alerts = with_operators
    customer = Customer(services, messenger)
    await customer.say(*NEW_CUSTOMER_TO_SUMMARY[:4])

    [handed] = await customer.say("quiero hablar con un asesor")
    quiet = await customer.say("hola?", "¿alguien?")
    back = await customer.say("menú")

    assert "una persona" in handed.text and "lunes a sábado" in handed.text
    assert len(alerts.sent) == 1 and "987" not in alerts.sent[0][0]
    assert quiet == []
    assert "Aquí estoy de nuevo" in back[0].text


async def test_finding_6_a_complaint_shows_the_libro_de_reclamaciones(settings, clock, messenger):
    settings = settings.model_copy(update={"complaints_book_url": "https://libro.test/reclamos"})
    app = build(settings, overrides=Overrides(clock=clock, messenger=messenger))
    async with app.state.services.lifetime(background=False) as services:
        customer = Customer(services, messenger)

        [told] = await customer.say("tengo un reclamo")

    assert "https://libro.test/reclamos" in told.text


async def test_a_held_order_answers_with_its_refund_deadline(services, messenger, clock):
    customer = Customer(services, messenger)
    await customer.say(*_held_purchase())
    await customer.pay()
    order = next(o for o in await services.orders.recent(customer.key, limit=1))

    [told] = await customer.say("y mi recarga?")

    assert order.state is OrderState.HELD
    assert "devolvemos S/ 10.00" in told.text and "hasta el" in told.text
