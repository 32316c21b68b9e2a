"""The promo opt-in in the pure machine: asked once after the first recharge, /promos si|no."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conversations.machine import OrderSettled as Settled
from conversations.machine import RecordPromos, Text, step
from conversations.model import OrderState
from conversations.session import Session, Step
from tests.unit.builders import CONSENTED, RULES, replies, session_at, settled_order

ASKING = Session(Step.ASK_PROMOS, profile=replace(CONSENTED, promos_asked=True))


def records(transition) -> list[RecordPromos]:
    return [e for e in transition.effects if isinstance(e, RecordPromos)]


def test_the_first_completed_recharge_asks_in_the_same_message_and_records_the_asking():
    result = step(
        session_at(Step.AWAIT_PAYMENT), Settled(settled_order("ord-1", OrderState.COMPLETED)), RULES
    )

    (reply,) = replies(result)
    assert "Recarga exitosa" in reply.text and "promociones" in reply.text
    assert [o.id for o in reply.options] == ["promos:si", "promos:no"]
    assert result.session.step is Step.ASK_PROMOS and result.session.profile.promos_asked
    assert records(result) == [RecordPromos(None)]


@pytest.mark.parametrize("state", [OrderState.REFUNDED, OrderState.EXPIRED])
def test_an_order_that_failed_does_not_ask(state):
    result = step(session_at(Step.AWAIT_PAYMENT), Settled(settled_order("ord-1", state)), RULES)

    assert result.session.step is Step.IDLE and records(result) == []


def test_a_customer_already_asked_is_not_asked_again():
    asked = replace(session_at(Step.AWAIT_PAYMENT), profile=replace(CONSENTED, promos_asked=True))

    result = step(asked, Settled(settled_order("ord-1", OrderState.COMPLETED)), RULES)

    assert result.session.step is Step.IDLE and records(result) == []
    assert not replies(result)[0].options


def test_a_customer_busy_with_another_purchase_is_not_interrupted():
    busy = session_at(Step.CHOOSE_KIND)

    result = step(busy, Settled(settled_order("other", OrderState.COMPLETED)), RULES)

    assert result.session.step is Step.CHOOSE_KIND and records(result) == []


@pytest.mark.parametrize(
    ("typed", "opt_in"), [("1", True), ("sí", True), ("no", False), ("2", False)]
)
def test_an_answer_is_recorded_and_frees_the_chat(typed, opt_in):
    result = step(ASKING, Text(typed), RULES)

    assert records(result) == [RecordPromos(opt_in)]
    assert result.session.step is Step.IDLE


def test_anything_else_lapses_the_question_and_greets():
    result = step(ASKING, Text("hola"), RULES)

    assert records(result) == []
    assert result.session.step is not Step.ASK_PROMOS
    assert "Hola" in replies(result)[0].text or "número" in replies(result)[0].text


@pytest.mark.parametrize(("typed", "opt_in"), [("/promos si", True), ("/promos NO", False),
                                               ("promos sí", True)])  # fmt: skip
def test_the_promos_command_works_mid_conversation_and_keeps_the_step(typed, opt_in):
    at = session_at(Step.CHOOSE_KIND)

    result = step(at, Text(typed), RULES)

    assert records(result) == [RecordPromos(opt_in)]
    assert result.session.step is Step.CHOOSE_KIND
    assert len(replies(result)) == 2  # the acknowledgement, then the pending question again


def test_the_promos_command_without_an_answer_explains_itself():
    result = step(session_at(Step.IDLE), Text("/promos"), RULES)

    assert records(result) == [] and "promos si" in replies(result)[0].text
