"""Properties of ``step()`` over random conversations: it never raises, its replies are well
formed, a checkout opens only on an explicit confirmation, and the session survives storage."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import hypothesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from conversations.catalog import (
    credit_product,
    is_custom_amount_allowed,
    parse_document,
    parse_msisdn,
    parse_name,
)
from conversations.machine import (
    CheckoutFailed,
    CheckoutOpened,
    Choice,
    Event,
    OpenCheckout,
    OperatorChecked,
    OrderSettled,
    Text,
    Transition,
    Verdict,
    options,
    resolve,
    step,
)
from conversations.model import SETTLED_STATES, DocType, Line, Product, ProductKind, Purchase
from conversations.reading import read
from conversations.session import Profile, Session, Step, dump_session, load_session
from tests.unit.builders import (
    CATALOGUE,
    PURCHASE,
    RULES,
    badly_formatted_amounts,
    replies,
    settled_order,
)

# One fixed seed: the same conversations on every run, about two seconds per property.
CONVERSATIONS = settings(
    derandomize=True,
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_EVENTS = 40

# ---------------------------------------------------------------- what customers and the world send

VOCABULARY = (
    "hola", "/start", "/cancelar", "cancelar", "/ayuda", "recargar", "menu",
    "1", "2", "3", "4", "5", "8", "9", "01", "sí", "no", "ok", "otro", "repetir",
)  # fmt: skip
# Valid (and nearly valid) answers to each step's question, so that conversations get far.
ANSWERS = {
    Step.CONSENT: ("acepto", "sí", "no acepto"),
    Step.PICK_LINE: ("1", "2", "otro número", "987654321"),
    Step.ASK_NUMBER: ("987654321", "+51 912 345 678", "956-789-012", "812345678", "98765432"),
    Step.ASK_NAME: ("María Quispe", "josé ñañez", "Ana-María O'Brien", "R2D2"),
    Step.ASK_DOC_TYPE: ("dni", "CE", "carné", "Pasaporte", "1", "3"),
    Step.ASK_DOC_NUMBER: ("10117410", "10117410-2", "123456789", "ab123456", "00000000"),
    Step.CHOOSE_KIND: ("saldo", "paquetes", "1", "2"),
    Step.CHOOSE_AMOUNT: ("S/ 10", "4", "otro monto", "50", "12"),
    Step.ASK_AMOUNT: ("25", "S/ 200", "60 soles", "201", "2", "10.50"),
    Step.CHOOSE_PACKAGE: ("1", "2", "4", "5"),
    Step.CONFIRM: ("confirmar", "sí", "cambiar", "1", "2"),
    Step.CHANGE: ("numero", "monto", "1", "2"),
}
ALL_ANSWERS = tuple(answer for answers in ANSWERS.values() for answer in answers)
ODD_CHARS = "\u200b\u200c\u200d\u2060\ufeff\u202e\u202d\u200f\u061c\u0301\u1369\U00010a40😀ñÑ９"
ORDER_IDS = ("ord-1", "ord-2")


def _repeated(chunk: str, times: int) -> str:
    """Long messages, up to 5,000 characters, without asking Hypothesis to draw each one."""
    return (chunk * times)[:5000]


any_text = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.sampled_from(ODD_CHARS + "0123456789 +-/.aS"), max_size=40),
    st.builds(_repeated, st.text(min_size=1, max_size=5), st.integers(0, 5000)),
)


def events(session: Session) -> SearchStrategy[Event]:
    """Anything that may reach the machine next, biased towards answers that move the chat on."""
    return _events(
        session.step,
        tuple(option.id for option in options(session, RULES)),
        session.draft.msisdn or "987654321",
        session.payment.order_id if session.payment else None,
        session.draft.purchase or PURCHASE,
    )


# Cached: Hypothesis validates a strategy on first use, which dominates the run time otherwise.
@functools.cache
def _events(
    at: Step, offered: tuple[str, ...], msisdn: str, waited: str | None, purchase: Purchase
) -> SearchStrategy[Event]:
    answers = st.sampled_from(ANSWERS.get(at, ALL_ANSWERS)).map(Text)
    choices = st.sampled_from(offered).map(Choice) if offered else st.nothing()
    settled = st.builds(
        lambda order_id, state: OrderSettled(settled_order(order_id, state, purchase)),
        st.sampled_from([waited or "ord-1", "ord-old"]),
        st.sampled_from(sorted(SETTLED_STATES)),
    )
    return st.one_of(
        answers,
        answers,
        answers,
        choices,
        choices,
        st.sampled_from(VOCABULARY + ALL_ANSWERS).map(Text),
        any_text.map(Text),
        st.text(max_size=80).map(Choice),
        st.builds(
            OperatorChecked, st.sampled_from([msisdn, "912345678"]), st.sampled_from(Verdict)
        ),
        st.just(OperatorChecked(msisdn, Verdict.CLARO)),
        st.builds(CheckoutOpened, st.sampled_from(ORDER_IDS), st.just("https://pay.example/cs")),
        st.just(CheckoutFailed()),
        settled,
    )


# ---------------------------------------------------------------- who starts the chat

LINES = (
    Line("987654321", "María Quispe", DocType.DNI, "10117410"),
    Line("912345678", "José Ñañez", DocType.CE, "001234567"),
    Line("956789012", "Ana O'Brien", DocType.PASSPORT, "AB123456"),
)
RETIRED = Product("paq-retirado", ProductKind.PACKAGE, "Paquete retirado", 900, 7)
LAST_PRODUCTS = (credit_product(5), credit_product(60), *CATALOGUE.packages, RETIRED)


@st.composite
def profiles(draw: DrawFn) -> Profile:
    lines = tuple(draw(st.lists(st.sampled_from(LINES), max_size=3, unique=True)))
    last = None
    if lines and draw(st.booleans()):
        last = Purchase(draw(st.sampled_from(lines)), draw(st.sampled_from(LAST_PRODUCTS)))
    return Profile(consented=draw(st.booleans()), lines=lines, last=last)


# ---------------------------------------------------------------- driving conversations


@dataclass(frozen=True)
class Turn:
    before: Session
    event: Event
    after: Transition


def converse(data: st.DataObject, profile: Profile, check: Callable[[Turn], None]) -> None:
    """Play a random conversation from a fresh chat, checking every turn."""
    session = Session(profile=profile)
    for _ in range(data.draw(st.integers(1, MAX_EVENTS), label="length")):
        event = data.draw(events(session), label="event")
        turn = Turn(session, event, step(session, event, RULES))
        check(turn)
        hypothesis.event(f"reached {turn.after.session.step.value}")
        if any(isinstance(e, OpenCheckout) for e in turn.after.effects):
            hypothesis.event("opened a checkout")
        session = turn.after.session


def is_confirmation(session: Session, event: Event) -> bool:
    if isinstance(event, Choice):
        return event.option_id == "confirm"
    if not isinstance(event, Text):
        return False
    chosen = resolve(options(session, RULES), event.body)
    # A plain yes ("sí pe", "acepto", "dale") to the summary confirms it too.
    return chosen == "confirm" or (chosen is None and read(event.body).answer is True)


def is_sellable(product: Product) -> bool:
    if product.kind is ProductKind.PACKAGE:
        return product in CATALOGUE.packages
    amount = product.price_cents // 100
    return product == credit_product(amount) and is_custom_amount_allowed(amount)


def line_is_canonical(line: Line) -> bool:
    """Parsing what was kept gives it back: the line was validated, not merely typed."""
    return (
        parse_msisdn(line.msisdn) == line.msisdn
        and parse_name(line.owner_name) == line.owner_name
        and parse_document(line.doc_type, line.doc_number) == line.doc_number
    )


# ---------------------------------------------------------------- the properties


def _replies_are_well_formed(turn: Turn) -> None:
    for reply in replies(turn.after):
        assert reply.text.strip()
        assert all(option.label.strip() for option in reply.options)
        assert all(len(option.id.encode()) <= 64 for option in reply.options)


@CONVERSATIONS
@given(profile=profiles(), data=st.data())
def test_step_never_raises_and_every_reply_has_text_and_short_option_ids(
    profile: Profile, data: st.DataObject
) -> None:
    converse(data, profile, _replies_are_well_formed)


def _amounts_have_two_decimals(turn: Turn) -> None:
    for reply in replies(turn.after):
        assert badly_formatted_amounts(reply) == []


@CONVERSATIONS
@given(profile=profiles(), data=st.data())
def test_every_amount_shown_has_two_decimals(profile: Profile, data: st.DataObject) -> None:
    converse(data, profile, _amounts_have_two_decimals)


def _checkout_only_on_confirmation(turn: Turn) -> None:
    opened = [e for e in turn.after.effects if isinstance(e, OpenCheckout)]
    if not opened:
        return
    (checkout,) = opened
    assert turn.before.profile.consented
    assert turn.before.step is Step.CONFIRM
    assert is_confirmation(turn.before, turn.event)
    assert line_is_canonical(checkout.purchase.line)
    assert is_sellable(checkout.purchase.product)


@CONVERSATIONS
@given(profile=profiles(), data=st.data())
def test_checkout_opens_only_on_a_consented_confirmed_valid_purchase(
    profile: Profile, data: st.DataObject
) -> None:
    converse(data, profile, _checkout_only_on_confirmation)


def _survives_storage(turn: Turn) -> None:
    session = turn.after.session
    assert load_session(dump_session(session), session.profile) == session


@CONVERSATIONS
@given(profile=profiles(), data=st.data())
def test_session_round_trips_through_storage(profile: Profile, data: st.DataObject) -> None:
    converse(data, profile, _survives_storage)
