"""A chat handed to a person: what the customer writes is kept for them, and the person gives the
chat back to the bot (``NoteForPerson``, ``HandedBack``)."""

from __future__ import annotations

from conversations import messages as msg
from conversations.machine import (
    CallPerson,
    Choice,
    HandedBack,
    NoteForPerson,
    Say,
    Text,
    Transition,
    step,
)
from conversations.session import Session, Step
from tests.unit.builders import RETURNING, RULES, replies, session_at


def in_handoff() -> Session:
    return Session(step=Step.HANDOFF, profile=RETURNING)


def notes(transition: Transition) -> list[NoteForPerson]:
    return [e for e in transition.effects if isinstance(e, NoteForPerson)]


def test_the_message_asking_for_a_person_opens_the_notes() -> None:
    asked = step(Session(profile=RETURNING), Text("quiero hablar con un asesor"), RULES)

    assert asked.session.step is Step.HANDOFF
    assert CallPerson(complaint=False) in asked.effects
    assert notes(asked) == [NoteForPerson("quiero hablar con un asesor", opens=True)]


def test_a_complaint_opens_the_notes_too() -> None:
    asked = step(session_at(Step.CHOOSE_AMOUNT), Text("tengo un reclamo"), RULES)

    assert notes(asked) == [NoteForPerson("tengo un reclamo", opens=True)]


def test_what_the_customer_writes_in_handoff_is_kept_for_the_person_unanswered() -> None:
    kept = step(in_handoff(), Text("mi recarga de ayer no llegó"), RULES)

    assert kept.session.step is Step.HANDOFF
    assert kept.effects == (NoteForPerson("mi recarga de ayer no llegó"),)


def test_a_button_pressed_in_handoff_is_neither_kept_nor_answered() -> None:
    assert step(in_handoff(), Choice("pay"), RULES).effects == ()


def test_menu_returns_to_the_bot_without_a_note() -> None:
    back = step(in_handoff(), Text("menú"), RULES)

    assert back.session.step is not Step.HANDOFF
    assert notes(back) == []


def test_handed_back_returns_the_chat_to_the_bot_and_says_so() -> None:
    back = step(in_handoff(), HandedBack(), RULES)

    assert back.session.step is Step.IDLE
    assert back.effects == (Say(msg.back_to_bot()),)
    assert msg.back_to_bot().text.startswith("¡Aquí estoy de nuevo!")


def test_after_handed_back_a_greeting_gets_the_bot_answer() -> None:
    back = step(in_handoff(), HandedBack(), RULES)

    hello = step(back.session, Text("hola"), RULES)

    assert hello.session.step is Step.PICK_LINE  # the returning customer's lines, offered
    assert len([e for e in hello.effects if isinstance(e, Say)]) == 1


def test_handed_back_leaves_a_chat_already_with_the_bot_alone() -> None:
    chat = session_at(Step.CHOOSE_AMOUNT)

    assert step(chat, HandedBack(), RULES) == Transition(chat)


def test_a_chat_handed_back_while_its_link_is_out_still_waits_on_the_payment() -> None:
    """Asked for a person with a link out, then "menú": the link is still there, not silence."""
    waiting = step(session_at(Step.AWAIT_PAYMENT), Text("asesor"), RULES).session

    back = step(waiting, Text("menú"), RULES)
    later = step(back.session, Text("hola"), RULES)
    handed = step(waiting, HandedBack(), RULES)

    assert back.session.step is Step.AWAIT_PAYMENT and handed.session.step is Step.AWAIT_PAYMENT
    assert any("sigue activo" in r.text for r in replies(later))
