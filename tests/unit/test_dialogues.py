"""The dialogue corpus (tests/dialogues/*.yaml) played against the pure machine.

Each dialogue starts a chat in a known state (a new customer, a returning one with a saved line
and a last purchase, or a chat waiting on an order in a given state) and plays customer lines one
by one. The machine's effects are answered the way ``ChatService`` answers them: the operator
check says Claro (or another operator for the numbers the dialogue lists), a checkout opens an
order, a cancel moves an unpaid order to cancelled. Each line states what must follow: the step,
a key phrase of the reply, what the draft holds, the effects.

Over the whole corpus it measures the share of customer lines understood and the messages each
purchase takes to reach the payment link (run with ``-s`` to see them).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from conversations import messages as msg
from conversations.catalog import fold
from conversations.machine import (
    CallPerson,
    CancelAnswered,
    CancelCheckout,
    CheckOperator,
    CheckoutOpened,
    Choice,
    Effect,
    Event,
    HistoryLoaded,
    OpenCheckout,
    OperatorChecked,
    OrderSettled,
    PersonalDataLoaded,
    RecordConsent,
    RememberLine,
    Say,
    ShowHistory,
    ShowPersonalData,
    Text,
    Verdict,
    step,
)
from conversations.messages import Reply
from conversations.model import DocType, Order, OrderState, PersonalData
from conversations.session import Draft, Payment, Session, Step
from tests.unit.builders import (
    CONSENTED,
    LINE,
    NEW_CUSTOMER,
    PAY_URL,
    PURCHASE,
    RETURNING,
    RULES,
    settled_order,
)

CORPUS = Path(__file__).parents[1] / "dialogues"
WAITING_ORDER = "ord-1"
# Messages to the payment link, at most: from "hola" for a new customer, for a returning one,
# and for a returning customer who says it all in one message ("recarga 20 soles al 9…").
MOST_MESSAGES = {"new": 9, "returning": 3, "one_message": 2}
_EFFECT_NAMES: dict[str, type[Effect]] = {
    "check_operator": CheckOperator,
    "open_checkout": OpenCheckout,
    "cancel_checkout": CancelCheckout,
    "call_person": CallPerson,
    "record_consent": RecordConsent,
    "remember_line": RememberLine,
    "show_history": ShowHistory,
    "show_personal_data": ShowPersonalData,
}
_EXPECTED = frozenset(("step", "reply", "no_reply", "replies", "draft", "effects", "link"))
# How a line counts: "refusal" where refusing is right, "gap" where the bot cannot read it yet.
_TURN_KEYS = _EXPECTED | {"say", "press", "settle", "refusal", "gap"}
_DIALOGUE_KEYS = frozenset(("name", "start", "other", "measure", "turns"))

# ---------------------------------------------------------------- not understood, and bare


def _not_understood_texts() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Replies that mean "I did not get that": whole texts, and the starts of parametric ones."""
    whole = (
        msg.bad_number().text,
        msg.bad_name().text,
        msg.bad_amount().text,
        msg.not_a_mobile().text,
        msg.consent_again(()).text,
    )
    starts = (
        *(msg.bad_doc_number(t).text.split(" no es válido")[0] for t in DocType),
        "¿«",  # one_word_name: the name is asked again
    )
    return whole, starts


_WHOLE, _STARTS = _not_understood_texts()


def not_understood(reply: Reply) -> bool:
    said = fold(reply.text)
    return (
        reply.text in _WHOLE
        or reply.text.startswith(_STARTS)
        or "no te entendi" in said
        or "no entendi" in said
    )


def bare(reply: Reply) -> bool:
    """A not-understood reply that neither gives an example nor lists the options."""
    return not_understood(reply) and "por ejemplo" not in reply.text and not reply.options


# ---------------------------------------------------------------- the corpus as data


@dataclass(frozen=True)
class Dialogue:
    theme: str
    name: str
    start: str
    turns: tuple[dict[str, Any], ...]
    other: frozenset[str] = frozenset()
    measure: str | None = None


@cache
def corpus() -> tuple[Dialogue, ...]:
    found: list[Dialogue] = []
    for path in sorted(CORPUS.glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")):
            unknown = set(entry) - _DIALOGUE_KEYS
            assert not unknown, f"{path.name}: {entry.get('name')}: unknown keys {unknown}"
            found.append(
                Dialogue(
                    theme=path.stem,
                    name=entry["name"],
                    start=entry.get("start", "new"),
                    turns=tuple(entry["turns"]),
                    other=frozenset(str(n) for n in entry.get("other", ())),
                    measure=entry.get("measure"),
                )
            )
    return tuple(found)


def _start(start: str) -> tuple[Session, dict[str, Order]]:
    """The chat as the dialogue finds it, and the orders storage holds."""
    if start == "new":
        return Session(profile=NEW_CUSTOMER), {}
    if start == "consented":
        return Session(profile=CONSENTED), {}
    if start == "returning":
        return Session(profile=RETURNING), {}
    kind, _, state = start.partition(":")
    assert kind == "order", f"unknown start {start!r}"
    order = settled_order(WAITING_ORDER, OrderState(state))
    payment = Payment(PURCHASE.product.price_cents, WAITING_ORDER, PAY_URL)
    waiting = Session(Step.AWAIT_PAYMENT, Draft.of(LINE, PURCHASE.product), payment, RETURNING)
    return waiting, {WAITING_ORDER: order}


# ---------------------------------------------------------------- playing a dialogue


@dataclass
class PlayedLine:
    """One customer line as played: what came back and whether it met the dialogue."""

    text: str
    replies: list[Reply]
    failures: list[str]
    refusal: bool
    link: bool
    gap: bool  # a line the bot does not understand yet, kept to measure it honestly

    @property
    def understood(self) -> bool:
        if self.gap or self.failures:
            return False
        return self.refusal or not any(map(not_understood, self.replies))


@dataclass
class Played:
    dialogue: Dialogue
    lines: list[PlayedLine] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def messages_to_link(self) -> int | None:
        """Customer lines sent until the payment link came back (None if it never did)."""
        for count, line in enumerate(self.lines, start=1):
            if line.link:
                return count
        return None


class World:
    """What ChatService does with the machine's effects, in memory."""

    def __init__(self, orders: dict[str, Order], other: frozenset[str]) -> None:
        self.orders = orders
        self.other = other

    def attach(self, session: Session) -> Session:
        """Load the order the chat waits on, as ChatService does before every message."""
        payment = session.payment
        order = self.orders.get(payment.order_id) if payment and payment.order_id else None
        return replace(session, order=order)

    def answer(self, effect: Effect) -> Event | None:
        match effect:
            case CheckOperator(msisdn):
                return OperatorChecked(
                    msisdn, Verdict.OTHER if msisdn in self.other else Verdict.CLARO
                )
            case OpenCheckout(purchase):
                order_id = f"ord-{len(self.orders) + 2}"
                self.orders[order_id] = settled_order(
                    order_id, OrderState.AWAITING_PAYMENT, purchase
                )
                return CheckoutOpened(order_id, f"{PAY_URL}/{order_id}")
            case CancelCheckout(order_id):
                order = self.orders[order_id]
                if order.state is not OrderState.AWAITING_PAYMENT:
                    return CancelAnswered(order, charged=True)
                self.orders[order_id] = replace(order, state=OrderState.CANCELLED)
                return CancelAnswered(self.orders[order_id], charged=False)
            case ShowHistory():
                return HistoryLoaded(())
            case ShowPersonalData():
                return PersonalDataLoaded(PersonalData())
        return None

    def exchange(self, session: Session, event: Event) -> tuple[Session, list[Effect]]:
        """Run one event and everything its effects bring back; return every effect."""
        pending, done = [event], []
        while pending:
            transition = step(session, pending.pop(0), RULES)
            session = transition.session
            for effect in transition.effects:
                done.append(effect)
                if (follow := self.answer(effect)) is not None:
                    pending.append(follow)
        return session, done

    def settle(self, session: Session, state: str) -> Event:
        payment = session.payment
        assert payment is not None and payment.order_id, "settle: the chat waits on no order"
        order = replace(self.orders[payment.order_id], state=OrderState(state))
        if order.state is OrderState.COMPLETED:
            order = replace(order, operation_id="OP-123")
        self.orders[payment.order_id] = order
        return OrderSettled(order)


def play(dialogue: Dialogue) -> Played:
    session, orders = _start(dialogue.start)
    world = World(orders, dialogue.other)
    played = Played(dialogue)
    for number, turn in enumerate(dialogue.turns, start=1):
        unknown = set(turn) - _TURN_KEYS
        assert not unknown, f"{dialogue.name} turn {number}: unknown keys {unknown}"
        session = world.attach(session)
        event: Event
        if "settle" in turn:
            event = world.settle(session, turn["settle"])
        elif "press" in turn:
            event = Choice(turn["press"])
        else:
            said_text = turn["say"]
            assert isinstance(said_text, str), f"{dialogue.name} turn {number}: quote {said_text!r}"
            event = Text(said_text)
        session, effects = world.exchange(session, event)
        said = [effect.reply for effect in effects if isinstance(effect, Say)]
        failures = [
            f"turn {number} ({_shown(turn)}): {f}" for f in _check(turn, session, said, effects)
        ]
        played.failures += failures
        if "settle" not in turn:
            link = any(reply.link and reply.link.url.startswith(f"{PAY_URL}/") for reply in said)
            played.lines.append(
                PlayedLine(
                    _shown(turn),
                    said,
                    failures,
                    bool(turn.get("refusal")),
                    link,
                    gap=bool(turn.get("gap")),
                )
            )
    return played


def _shown(turn: dict[str, Any]) -> str:
    return str(turn.get("say", turn.get("press", turn.get("settle"))))


def _check(
    turn: dict[str, Any], session: Session, said: list[Reply], effects: list[Effect]
) -> Iterator[str]:
    expectations = set(turn) & _EXPECTED
    if not expectations and "settle" not in turn:
        yield "no expectation: every line states what must follow"
    text = "\n".join(
        "\n".join((reply.text, *(option.label for option in reply.options))) for reply in said
    )  # what the customer reads: the text and the options offered
    if "step" in turn and session.step.value != turn["step"]:
        yield f"step {session.step.value!r}, expected {turn['step']!r}; said {text!r}"
    for phrase in _listed(turn.get("reply")):
        if fold(phrase) not in fold(text):
            yield f"reply lacks {phrase!r}; said {text!r}"
    for phrase in _listed(turn.get("no_reply")):
        if fold(phrase) in fold(text):
            yield f"reply must not say {phrase!r}; said {text!r}"
    if "replies" in turn and len(said) != turn["replies"]:
        yield f"{len(said)} replies, expected {turn['replies']}; said {text!r}"
    for key, expected in (turn.get("draft") or {}).items():
        actual = _draft_value(session.draft, key)
        if actual != expected:
            yield f"draft {key} = {actual!r}, expected {expected!r}"
    kinds = {
        name for name, kind in _EFFECT_NAMES.items() if any(isinstance(e, kind) for e in effects)
    }
    for name in _listed(turn.get("effects")):
        assert name.lstrip("!") in _EFFECT_NAMES, f"unknown effect {name!r}"
        if name.startswith("!") and name[1:] in kinds:
            yield f"effect {name[1:]} must not happen"
        elif not name.startswith("!") and name not in kinds:
            yield f"effect {name} expected, got {sorted(kinds)}"
    if "link" in turn:
        linked = any(reply.link is not None for reply in said)
        if linked != bool(turn["link"]):
            yield f"payment link {'missing' if turn['link'] else 'not expected'}; said {text!r}"


def _listed(value: object) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _draft_value(draft: Draft, key: str) -> object:
    product = draft.product
    match key:
        case "msisdn":
            return draft.msisdn
        case "owner":
            return draft.owner_name
        case "doc_type":
            return draft.doc_type.value if draft.doc_type else None
        case "doc_number":
            return draft.doc_number
        case "amount":  # céntimos
            return product.price_cents if product else None
        case "package":
            return product.code if product else None
    raise AssertionError(f"unknown draft key {key!r}")


@cache
def played_corpus() -> tuple[Played, ...]:
    return tuple(play(dialogue) for dialogue in corpus())


# ---------------------------------------------------------------- the tests


def test_the_corpus_holds_at_least_150_dialogues_with_unique_names() -> None:
    names = [dialogue.name for dialogue in corpus()]
    assert len(names) >= 150
    assert len(set(names)) == len(names), "two dialogues share a name"


@pytest.mark.parametrize("dialogue", corpus(), ids=lambda d: f"{d.theme}:{d.name}")
def test_dialogue(dialogue: Dialogue) -> None:
    played = play(dialogue)
    assert not played.failures, "\n".join(played.failures)


def test_no_reply_in_the_corpus_is_a_bare_no_entendi() -> None:
    """Every not-understood reply says what is expected, with an example or the options."""
    found = [
        (p.dialogue.name, line.text, reply.text)
        for p in played_corpus()
        for line in p.lines
        for reply in line.replies
        if bare(reply)
    ]
    assert not found
    assert any(not_understood(r) for p in played_corpus() for ln in p.lines for r in ln.replies)


def messages_to_link(measure: str) -> list[int]:
    counts = [p.messages_to_link for p in played_corpus() if p.dialogue.measure == measure]
    assert counts, f"no dialogue measures {measure!r}"
    assert None not in counts, f"a dialogue measuring {measure!r} never reached the payment link"
    return [c for c in counts if c is not None]


def test_a_new_customer_reaches_the_payment_link_in_at_most_9_messages() -> None:
    assert max(messages_to_link("new")) <= MOST_MESSAGES["new"]


def test_a_returning_customer_reaches_the_payment_link_in_at_most_3_messages() -> None:
    assert max(messages_to_link("returning")) <= MOST_MESSAGES["returning"]


def test_a_one_message_purchase_reaches_the_payment_link_in_at_most_2_messages() -> None:
    assert max(messages_to_link("one_message")) <= MOST_MESSAGES["one_message"]


def corpus_figures() -> dict[str, object]:
    """What the README quotes: dialogues, lines understood, messages to the payment link."""
    lines = [line for p in played_corpus() for line in p.lines]
    figures: dict[str, object] = {
        "dialogues": len(corpus()),
        "customer lines": len(lines),
        "understood": f"{sum(line.understood for line in lines) / len(lines):.1%}",
    }
    for measure in MOST_MESSAGES:
        counts = messages_to_link(measure)
        figures[f"messages to link ({measure})"] = (
            f"min {min(counts)}, median {statistics.median(counts):g}, max {max(counts)} "
            f"over {len(counts)} dialogues"
        )
    return figures


def test_the_corpus_figures() -> None:
    """Print the figures (seen with ``-s``); most customer lines must be understood."""
    figures = corpus_figures()
    print("\nDialogue corpus: " + "; ".join(f"{k}: {v}" for k, v in figures.items()))
    lines = [line for p in played_corpus() for line in p.lines]
    assert sum(line.understood for line in lines) / len(lines) >= 0.9
