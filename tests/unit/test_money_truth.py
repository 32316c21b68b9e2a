"""Property: whatever the customer sends, no reply misstates the money of the chat's order.

A chat waiting on an order sees the order as storage has it (``Session.order``). Once the card is
captured (every state but awaiting payment, cancelled and expired) no reply may say the link is
still open, offer the link again, or say that nothing was charged.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conversations.machine import (
    CancelAnswered,
    CancelCheckout,
    Choice,
    Event,
    Text,
    options,
    step,
)
from conversations.model import OrderState
from conversations.session import Step
from tests.unit.builders import PAY_URL, RULES, replies, session_at, settled_order

CAPTURED = frozenset(OrderState) - {
    OrderState.AWAITING_PAYMENT, OrderState.CANCELLED, OrderState.EXPIRED
}  # fmt: skip
UNTRUE_ONCE_PAID = ("sigue activo", "no se realizó ningún cargo", "Pagar S/")
# Every kind of input: commands, intents, small talk, data, options, garbage.
TYPED = [
    "hola", "/cancelar", "cancelar", "anula eso", "/start", "recargar", "menú", "/ayuda", "ayuda",
    "gracias", "ok", "👍", "sí", "no", "Confirmar", "1", "7", "S/ 10", "diez soles",
    "987654321", "recarga 10 al 987654321", "María Quispe", "DNI 45678912", "Paquete Redes",
    "atrás", "asesor", "reclamo", "mis recargas", "/misdatos", "¿y mi recarga?", "pagué ya",
    "no, el número es 987654322", "cambiar titular", "", "😀", "x" * 300,
]  # fmt: skip


def waiting_on(state: OrderState):
    order = settled_order("ord-1", state)
    order = replace(order, refund_after=datetime(2026, 11, 3, 14, 0, tzinfo=UTC))
    return replace(session_at(Step.AWAIT_PAYMENT), order=order)


def inputs() -> st.SearchStrategy[Event]:
    option_ids = sorted({o.id for s in Step for o in options(session_at(s), RULES)})
    return st.one_of(
        st.sampled_from(TYPED).map(Text),
        st.text(max_size=40).map(Text),
        st.sampled_from(option_ids).map(Choice),
    )


@settings(max_examples=400, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(state=st.sampled_from(sorted(OrderState)), events=st.lists(inputs(), max_size=4))
def test_no_reply_misstates_the_money_of_the_order(state: OrderState, events: list[Event]) -> None:
    session = waiting_on(state)
    untrue: list[str] = []
    for event in events:
        transition = step(session, event, RULES)
        said = replies(transition)
        for effect in transition.effects:
            if isinstance(effect, CancelCheckout):  # the service's answer, as it would come
                order = session.order if state in CAPTURED else replace(
                    session.order, state=OrderState.CANCELLED
                )  # fmt: skip
                answered = step(transition.session, CancelAnswered(order, charged=None), RULES)
                said += replies(answered)
        if state in CAPTURED:
            untrue += [r.text for r in said if any(w in r.text for w in UNTRUE_ONCE_PAID)]
            untrue += [r.text for r in said if r.link and r.link.url == PAY_URL]
        session = transition.session
        if session.payment is None:
            break  # the chat left the order: what follows is about other things

    assert untrue == []


def test_each_captured_state_has_its_own_true_answer() -> None:
    told = {
        state: replies(step(waiting_on(state), Text("hola"), RULES))[0].text for state in CAPTURED
    }

    assert "te aviso apenas termine" in told[OrderState.PAID]
    assert "hasta el 03/11 a las 09:00" in told[OrderState.HELD]  # refund_after, Lima time
    assert "estamos devolviendo" in told[OrderState.TOPUP_FAILED]
    assert "Recarga exitosa" in told[OrderState.COMPLETED]
    assert "Ya devolvimos" in told[OrderState.REFUNDED]


def test_cancelar_on_a_paid_order_says_it_is_paid_and_what_happens_next() -> None:
    result = step(waiting_on(OrderState.HELD), Text("/cancelar"), RULES)

    (reply,) = replies(result)
    assert not [e for e in result.effects if isinstance(e, CancelCheckout)]
    assert "ya está pagado" in reply.text and "devolvemos S/ 10.00" in reply.text
    assert result.session.payment is None  # the chat is free for another purchase


def test_cancel_answers_follow_what_the_gateway_said() -> None:
    cancelled = settled_order("ord-1", OrderState.CANCELLED)
    idle = session_at(Step.IDLE)

    free = replies(step(idle, CancelAnswered(cancelled, charged=False), RULES))[0].text
    late = replies(step(idle, CancelAnswered(cancelled, charged=True), RULES))[0].text
    unknown = replies(step(idle, CancelAnswered(cancelled, charged=None), RULES))[0].text

    assert "no se realizó ningún cargo" in free
    assert "no se realizó ningún cargo" not in late and "Si alcanzaste a pagar" in late
    assert "no se realizó ningún cargo" not in unknown


def test_an_awaiting_order_still_gets_its_link() -> None:
    (reply,) = replies(step(waiting_on(OrderState.AWAITING_PAYMENT), Text("hola"), RULES))

    assert "sigue activo" in reply.text and reply.link is not None
