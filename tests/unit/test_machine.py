"""Table-driven tests of ``step()``: every step of the dialogue, the commands, and wrong inputs."""

from __future__ import annotations

import re

import pytest

from conversations.catalog import credit_product
from conversations.machine import (
    CancelCheckout,
    CheckOperator,
    CheckoutFailed,
    CheckoutOpened,
    Choice,
    Event,
    OpenCheckout,
    OperatorChecked,
    OrderSettled,
    RecordConsent,
    RememberLine,
    Text,
    Transition,
    Verdict,
    step,
)
from conversations.messages import Reply
from conversations.model import DocType, OrderState, Product, ProductKind, Purchase
from conversations.session import Draft, Payment, Profile, Session, Step
from tests.unit.builders import (
    CATALOGUE,
    CONSENTED,
    LINE,
    NEW_CUSTOMER,
    PAY_URL,
    PURCHASE,
    RETURNING,
    RULES,
    badly_formatted_amounts,
    replies,
    session_at,
    settled_order,
)

# A chat handed to a person answers only "menú" and /cancelar: tested on its own below.
ALL_STEPS = [s for s in Step if s is not Step.HANDOFF]
PERSONAL_EFFECTS = (RecordConsent, RememberLine, OpenCheckout)
_SPANISH_WORD = re.compile(r"\b(?:de|el|la|que|un|una|tu|tus|con|es|no|para)\b", re.IGNORECASE)


def run(session: Session, *events: Event) -> Transition:
    """Feed events one after the other; return the last transition."""
    transition = Transition(session)
    for event in events:
        transition = step(transition.session, event, RULES)
    return transition


def only_reply(transition: Transition) -> Reply:
    (reply,) = replies(transition)
    return reply


def link_url(transition: Transition) -> str | None:
    link = only_reply(transition).link
    return link.url if link else None


def option_ids(transition: Transition) -> list[str]:
    return [option.id for reply in replies(transition) for option in reply.options]


def of_type(transition: Transition, kind: type | tuple[type, ...]) -> list[object]:
    return [effect for effect in transition.effects if isinstance(effect, kind)]


# ---------------------------------------------------------------- consent


def test_new_customer_greeting_shows_the_privacy_notice_with_consent_options() -> None:
    result = step(Session(), Text("hola"), RULES)

    assert result.session.step is Step.CONSENT
    assert "Ley 29733" in only_reply(result).text
    assert option_ids(result) == ["accept", "decline"]


@pytest.mark.parametrize("answer", [Choice("accept"), Text("Acepto"), Text("sí"), Text("1")])
def test_accepting_consent_records_it_and_asks_the_number(answer: Event) -> None:
    result = step(session_at(Step.CONSENT), answer, RULES)

    assert result.effects[0] == RecordConsent(RULES.policy_version)
    assert result.session.step is Step.ASK_NUMBER
    assert result.session.profile.consented
    assert "9 dígitos" in only_reply(result).text


@pytest.mark.parametrize("answer", [Choice("decline"), Text("no"), Text("No acepto"), Text("2")])
def test_declining_consent_returns_to_idle_and_keeps_nothing(answer: Event) -> None:
    result = step(session_at(Step.CONSENT), answer, RULES)

    assert result.session == Session(profile=NEW_CUSTOMER)
    assert not of_type(result, PERSONAL_EFFECTS)
    assert "no guardé ningún dato" in only_reply(result).text


# ---------------------------------------------------------------- number and operator check


def test_valid_number_is_sent_for_an_operator_check() -> None:
    result = step(session_at(Step.ASK_NUMBER), Text("+51 987 654 321"), RULES)

    assert result.session.step is Step.CHECK_NUMBER
    assert result.session.draft == Draft(msisdn="987654321")
    assert result.effects == (CheckOperator("987654321"),)


def test_claro_line_asks_for_the_owners_name() -> None:
    result = step(session_at(Step.CHECK_NUMBER), OperatorChecked("987654321", Verdict.CLARO), RULES)

    assert result.session.step is Step.ASK_NAME
    assert "nombres y apellidos del titular" in only_reply(result).text


def test_unknown_operator_does_not_block_the_customer() -> None:
    result = step(
        session_at(Step.CHECK_NUMBER), OperatorChecked("987654321", Verdict.UNKNOWN), RULES
    )

    assert result.session.step is Step.ASK_NAME


def test_line_of_another_operator_is_refused_and_the_number_asked_again() -> None:
    result = step(session_at(Step.CHECK_NUMBER), OperatorChecked("987654321", Verdict.OTHER), RULES)

    assert result.session.step is Step.ASK_NUMBER
    assert "La línea 987 654 321 no pertenece a Claro" in only_reply(result).text


def test_verdict_about_another_number_is_ignored() -> None:
    session = session_at(Step.CHECK_NUMBER)

    result = step(session, OperatorChecked("912345678", Verdict.OTHER), RULES)

    assert result.session == session
    assert "verificando" in only_reply(result).text


def test_number_typed_while_checking_is_checked_instead() -> None:
    result = step(session_at(Step.CHECK_NUMBER), Text("912 345 678"), RULES)

    assert result.effects == (CheckOperator("912345678"),)
    assert result.session.draft == Draft(msisdn="912345678")


def test_saved_line_typed_again_skips_the_check_and_the_owner_questions() -> None:
    session = Session(Step.ASK_NUMBER, profile=RETURNING)

    result = step(session, Text("987654321"), RULES)

    assert result.session.step is Step.CHOOSE_KIND
    assert result.session.draft == Draft.of(LINE)
    assert not of_type(result, CheckOperator)


# ---------------------------------------------------------------- owner and document


def test_name_is_kept_tidied_and_the_document_type_asked() -> None:
    result = step(session_at(Step.ASK_NAME), Text("  María   Quispe "), RULES)

    assert result.session.step is Step.ASK_DOC_TYPE
    assert result.session.draft.owner_name == "María Quispe"
    assert option_ids(result) == ["doc:dni", "doc:ce", "doc:pasaporte"]


@pytest.mark.parametrize(
    ("answer", "doc_type"),
    [
        (Choice("doc:dni"), DocType.DNI),
        (Choice("doc:pasaporte"), DocType.PASSPORT),
        (Text("1"), DocType.DNI),
        (Text("2"), DocType.CE),
        (Text("3"), DocType.PASSPORT),
        (Text("dni"), DocType.DNI),
        (Text("Pasaporte"), DocType.PASSPORT),
        (Text("carné"), DocType.CE),
        (Text("Carné de Extranjería"), DocType.CE),
    ],
)
def test_document_type_is_taken_by_button_position_label_or_synonym(
    answer: Event, doc_type: DocType
) -> None:
    result = step(session_at(Step.ASK_DOC_TYPE), answer, RULES)

    assert result.session.step is Step.ASK_DOC_NUMBER
    assert result.session.draft.doc_type is doc_type


def test_document_number_saves_the_line_and_asks_what_to_buy() -> None:
    result = step(session_at(Step.ASK_DOC_NUMBER), Text("10117410-2"), RULES)

    assert result.effects[0] == RememberLine(LINE)
    assert result.session.step is Step.CHOOSE_KIND
    assert result.session.profile.lines == (LINE,)
    assert "Guardé la línea" in only_reply(result).text
    assert option_ids(result) == ["kind:saldo", "kind:paquete"]


def test_passport_number_is_checked_against_the_chosen_type() -> None:
    draft = Draft(LINE.msisdn, LINE.owner_name, DocType.PASSPORT)
    session = Session(Step.ASK_DOC_NUMBER, draft, profile=CONSENTED)

    result = step(session, Text("ab123456"), RULES)

    assert result.session.draft.doc_number == "AB123456"


# ---------------------------------------------------------------- product


def test_credit_offers_the_preset_amounts_and_another_amount() -> None:
    result = step(session_at(Step.CHOOSE_KIND), Choice("kind:saldo"), RULES)

    assert result.session.step is Step.CHOOSE_AMOUNT
    assert option_ids(result) == [f"amount:{s}" for s in (3, 5, 7, 10, 15, 20, 50)] + [
        "amount:other"
    ]


def test_packages_offer_every_catalogue_package() -> None:
    result = step(session_at(Step.CHOOSE_KIND), Text("paquetes"), RULES)

    assert result.session.step is Step.CHOOSE_PACKAGE
    assert option_ids(result) == [f"pkg:{p.code}" for p in CATALOGUE.packages]


@pytest.mark.parametrize(
    "answer",
    [Choice("amount:10"), Text("diez"), Text("S/ 10"), Text("10"), Text("10 soles"),
     Text("S/ 10.00"), Text("10 lucas porfa")],
)  # fmt: skip
def test_preset_amount_is_taken_by_button_or_amount(answer: Event) -> None:
    result = step(session_at(Step.CHOOSE_AMOUNT), answer, RULES)

    assert result.session.step is Step.CONFIRM
    assert result.session.draft.product == credit_product(10)


@pytest.mark.parametrize("typed", ["3", "5", "7"])
def test_typed_figure_at_the_amount_menu_is_soles_never_a_position(typed: str) -> None:
    """Finding 2 of the conversation issue: "7" bought S/ 50.00 (the seventh option)."""
    result = step(session_at(Step.CHOOSE_AMOUNT), Text(typed), RULES)

    assert result.session.draft.product == credit_product(int(typed))
    assert not only_reply(result).numbered or result.session.step is Step.CONFIRM


def test_amount_menu_is_listed_without_positions() -> None:
    result = step(session_at(Step.CHOOSE_KIND), Text("saldo"), RULES)

    assert only_reply(result).numbered is False


@pytest.mark.parametrize("answer", [Choice("amount:other"), Text("otro monto"), Text("otro")])
def test_another_amount_asks_for_whole_soles(answer: Event) -> None:
    result = step(session_at(Step.CHOOSE_AMOUNT), answer, RULES)

    assert result.session.step is Step.ASK_AMOUNT
    assert "de S/ 3.00 a S/ 200.00" in only_reply(result).text


@pytest.mark.parametrize(("typed", "amount"), [("3", 3), ("25", 25), ("S/ 60", 60), ("200", 200)])
def test_custom_amount_from_three_to_two_hundred_soles_is_accepted(typed: str, amount: int) -> None:
    result = step(session_at(Step.ASK_AMOUNT), Text(typed), RULES)

    assert result.session.step is Step.CONFIRM
    assert result.session.draft.product == credit_product(amount)


@pytest.mark.parametrize("answer", [Choice("pkg:paq-10-internet"), Text("2")])
def test_package_is_taken_by_button_or_position(answer: Event) -> None:
    result = step(session_at(Step.CHOOSE_PACKAGE), answer, RULES)

    assert result.session.step is Step.CONFIRM
    assert result.session.draft.product == CATALOGUE.package("paq-10-internet")


# ---------------------------------------------------------------- summary and checkout


def test_summary_shows_number_owner_price_with_igv_and_validity() -> None:
    result = step(session_at(Step.CHOOSE_AMOUNT), Choice("amount:10"), RULES)

    text = only_reply(result).text
    for part in ("987 654 321", "María Quispe", "DNI 10117410", "S/ 10.00", "IGV incluido"):
        assert part in text
    assert "30 días" in text
    assert option_ids(result) == ["confirm", "change", "cancel"]


@pytest.mark.parametrize(
    "answer", [Choice("confirm"), Text("Confirmar"), Text("1"), Text("sí"), Text("pagar")]
)
def test_confirming_opens_a_checkout_for_the_purchase(answer: Event) -> None:
    result = step(session_at(Step.CONFIRM), answer, RULES)

    assert result.effects == (OpenCheckout(PURCHASE),)
    assert result.session.step is Step.AWAIT_PAYMENT
    assert result.session.payment == Payment(1000)


def test_opened_checkout_sends_the_payment_link_as_a_button() -> None:
    waiting = step(session_at(Step.CONFIRM), Choice("confirm"), RULES).session

    result = step(waiting, CheckoutOpened("ord-1", PAY_URL), RULES)

    reply = only_reply(result)
    assert reply.link is not None and reply.link.url == PAY_URL
    assert reply.link.label == "Pagar S/ 10.00"
    assert result.session.payment == Payment(1000, "ord-1", PAY_URL)


@pytest.mark.parametrize("event", [Text("hola"), Text("ya pagué"), Choice("confirm"), Text("1")])
def test_any_message_while_waiting_repeats_the_same_link(event: Event) -> None:
    session = session_at(Step.AWAIT_PAYMENT)

    result = step(session, event, RULES)

    assert result.session == session
    assert link_url(result) == PAY_URL


def test_message_while_the_link_is_being_opened_asks_to_wait() -> None:
    session = Session(
        Step.AWAIT_PAYMENT, Draft.of(LINE, PURCHASE.product), Payment(1000), CONSENTED
    )

    result = step(session, Text("hola"), RULES)

    assert result.session == session
    assert "generando" in only_reply(result).text


def test_second_checkout_for_an_open_link_does_not_replace_it() -> None:
    session = session_at(Step.AWAIT_PAYMENT)

    result = step(session, CheckoutOpened("ord-2", "https://checkout.example/other"), RULES)

    assert result.session == session
    assert link_url(result) == PAY_URL


def test_failed_checkout_returns_to_the_summary_options() -> None:
    waiting = step(session_at(Step.CONFIRM), Choice("confirm"), RULES).session

    result = step(waiting, CheckoutFailed(), RULES)

    assert result.session == session_at(Step.CONFIRM)
    assert "No pude generar el enlace" in only_reply(result).text
    assert option_ids(result) == ["confirm", "change", "cancel"]


# ---------------------------------------------------------------- changing the purchase


@pytest.mark.parametrize("answer", [Choice("change"), Text("Cambiar"), Text("2"), Text("editar")])
def test_change_asks_what_to_change(answer: Event) -> None:
    result = step(session_at(Step.CONFIRM), answer, RULES)

    assert result.session.step is Step.CHANGE
    assert option_ids(result) == [
        "change:number", "change:owner", "change:document", "change:product"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("profile", "target"), [(CONSENTED, Step.ASK_NUMBER), (RETURNING, Step.PICK_LINE)]
)
def test_changing_the_number_asks_for_one_or_offers_the_saved_lines(
    profile: Profile, target: Step
) -> None:
    session = Session(Step.CHANGE, Draft.of(LINE, PURCHASE.product), profile=profile)

    result = step(session, Choice("change:number"), RULES)

    assert result.session.step is target


@pytest.mark.parametrize("answer", [Choice("change:product"), Text("monto"), Text("paquete")])
def test_changing_the_product_keeps_the_line_and_asks_what_to_buy(answer: Event) -> None:
    result = step(session_at(Step.CHANGE), answer, RULES)

    assert result.session.step is Step.CHOOSE_KIND
    assert result.session.draft.line == LINE


@pytest.mark.parametrize("answer", [Choice("cancel"), Text("3")])
def test_cancel_option_on_the_summary_cancels(answer: Event) -> None:
    result = step(session_at(Step.CONFIRM), answer, RULES)

    assert result.session == Session(profile=CONSENTED)
    assert "cancelé la operación" in only_reply(result).text


# ---------------------------------------------------------------- settled orders


@pytest.mark.parametrize(
    ("state", "told"),
    [
        (OrderState.COMPLETED, "Recarga exitosa"),
        (OrderState.REFUNDED, "extorno"),
        (OrderState.EXPIRED, "no se realizó ningún cargo"),
    ],
)
def test_settled_order_that_was_awaited_frees_the_chat(state: OrderState, told: str) -> None:
    result = step(
        session_at(Step.AWAIT_PAYMENT), OrderSettled(settled_order("ord-1", state)), RULES
    )

    # A first completed recharge frees the chat to the one-time promo question.
    freed = Step.ASK_PROMOS if state is OrderState.COMPLETED else Step.IDLE
    assert result.session.step is freed
    assert result.session.payment is None
    assert told in only_reply(result).text


def test_completed_order_tells_the_operation_number_and_becomes_the_last_purchase() -> None:
    order = settled_order("ord-1", OrderState.COMPLETED)

    result = step(session_at(Step.AWAIT_PAYMENT), OrderSettled(order), RULES)

    assert "OP-123" in only_reply(result).text
    assert result.session.profile.last == PURCHASE


@pytest.mark.parametrize("state", [OrderState.COMPLETED, OrderState.REFUNDED, OrderState.EXPIRED])
def test_settled_order_not_awaited_only_informs(state: OrderState) -> None:
    session = session_at(Step.AWAIT_PAYMENT)

    result = step(session, OrderSettled(settled_order("ord-old", state)), RULES)

    assert (result.session.step, result.session.payment) == (session.step, session.payment)
    assert len(replies(result)) == 1


# ---------------------------------------------------------------- returning customer


def test_returning_customer_is_offered_the_last_purchase_and_the_saved_line() -> None:
    result = step(Session(profile=RETURNING), Text("hola"), RULES)

    labels = [option.label for option in only_reply(result).options]
    assert result.session.step is Step.PICK_LINE
    assert labels[0].startswith("Repetir última recarga")
    assert "Recargar 987 654 321" in labels
    assert labels[-1] == "Otro número"


def test_repeating_the_last_purchase_reaches_checkout_in_three_messages() -> None:
    messages = (Text("hola"), Choice("repeat"), Choice("confirm"))

    result = run(Session(profile=RETURNING), *messages)

    assert result.effects == (OpenCheckout(PURCHASE),)


def test_repeat_shows_the_summary_of_the_last_purchase() -> None:
    result = step(session_at(Step.PICK_LINE), Choice("repeat"), RULES)

    assert result.session.step is Step.CONFIRM
    assert result.session.draft == Draft.of(LINE, PURCHASE.product)


def test_repeat_of_a_package_no_longer_sold_asks_for_another_product() -> None:
    gone = Product("paq-viejo", ProductKind.PACKAGE, "Paquete viejo", 900, 7)
    profile = Profile(consented=True, lines=(LINE,), last=Purchase(LINE, gone))

    result = step(Session(Step.PICK_LINE, profile=profile), Choice("repeat"), RULES)

    assert result.session.step is Step.CHOOSE_KIND
    assert "ya no está disponible" in replies(result)[0].text


def test_repeat_of_a_package_uses_todays_price() -> None:
    old = Product("paq-10-internet", ProductKind.PACKAGE, "Paquete Internet", 800, 7)
    profile = Profile(consented=True, lines=(LINE,), last=Purchase(LINE, old))

    result = step(Session(Step.PICK_LINE, profile=profile), Choice("repeat"), RULES)

    assert result.session.draft.product == CATALOGUE.package("paq-10-internet")


def test_saved_line_goes_straight_to_what_to_buy() -> None:
    result = step(session_at(Step.PICK_LINE), Choice("line:987654321"), RULES)

    assert result.session.step is Step.CHOOSE_KIND
    assert result.session.draft == Draft.of(LINE)
    assert not of_type(result, CheckOperator)


@pytest.mark.parametrize("answer", [Choice("new"), Text("Otro número"), Text("3")])
def test_another_number_asks_for_it(answer: Event) -> None:
    result = step(session_at(Step.PICK_LINE), answer, RULES)

    assert result.session.step is Step.ASK_NUMBER


# ---------------------------------------------------------------- commands at every step


@pytest.mark.parametrize("typed", ["/cancelar", "cancelar", "Cancelar", "/cancelar@RecargaBot"])
@pytest.mark.parametrize("at", ALL_STEPS)
def test_cancel_anywhere_returns_to_the_start_keeping_the_profile(at: Step, typed: str) -> None:
    session = session_at(at)

    result = step(session, Text(typed), RULES)

    assert result.session == Session(profile=session.profile)
    if at is Step.AWAIT_PAYMENT:  # what is said waits for what the gateway answers
        assert of_type(result, CancelCheckout) and not replies(result)
    else:
        assert "cancelé la operación" in only_reply(result).text


@pytest.mark.parametrize("at", [s for s in ALL_STEPS if s is not Step.AWAIT_PAYMENT])
def test_cancel_without_an_open_link_cancels_no_checkout(at: Step) -> None:
    result = step(session_at(at), Text("/cancelar"), RULES)

    assert not of_type(result, CancelCheckout)


def test_cancel_with_an_open_link_cancels_its_checkout() -> None:
    result = step(session_at(Step.AWAIT_PAYMENT), Text("/cancelar"), RULES)

    assert result.effects[0] == CancelCheckout("ord-1")


@pytest.mark.parametrize("typed", ["/ayuda", "ayuda", "/help"])
@pytest.mark.parametrize("at", ALL_STEPS)
def test_help_anywhere_explains_and_leaves_the_session_as_it_was(at: Step, typed: str) -> None:
    session = session_at(at)

    result = step(session, Text(typed), RULES)

    assert result.session == session
    assert "/cancelar" in replies(result)[0].text


@pytest.mark.parametrize("typed", ["/start", "recargar", "/start@RecargaBot"])
@pytest.mark.parametrize("at", [s for s in ALL_STEPS if s is not Step.AWAIT_PAYMENT])
def test_start_anywhere_greets_like_a_fresh_chat(at: Step, typed: str) -> None:
    session = session_at(at)
    fresh = step(Session(profile=session.profile), Text("hola"), RULES)

    result = step(session, Text(typed), RULES)

    assert result == fresh


def test_start_while_waiting_for_payment_keeps_the_link() -> None:
    session = session_at(Step.AWAIT_PAYMENT)

    result = step(session, Text("/start"), RULES)

    assert result.session == session
    assert link_url(result) == PAY_URL


# ---------------------------------------------------------------- wrong inputs keep the step

WRONG_INPUTS = [
    (Step.CONSENT, "quizás", "aviso de privacidad"),
    (Step.PICK_LINE, "12345", "No te entendí"),
    (Step.PICK_LINE, "4", "No te entendí"),
    (Step.ASK_NUMBER, "nueve ocho siete", "9 dígitos"),
    (Step.ASK_NUMBER, "98765432a", "9 dígitos"),
    (Step.ASK_NUMBER, "98765432", "9 dígitos"),
    (Step.ASK_NUMBER, "812345678", "9 dígitos"),
    (Step.ASK_NUMBER, "9876543210", "9 dígitos"),
    (Step.CHECK_NUMBER, "abc", "9 dígitos"),
    (Step.ASK_NAME, "Juan2", "nombre"),
    (Step.ASK_NAME, "A", "nombre"),
    (Step.ASK_NAME, "Robert'); DROP TABLE lines;--", "nombre"),
    (Step.ASK_DOC_TYPE, "licencia", "Escribe DNI, Carné de Extranjería o Pasaporte"),
    (Step.ASK_DOC_TYPE, "4", "Escribe DNI, Carné de Extranjería o Pasaporte"),
    (Step.ASK_DOC_NUMBER, "00000000", "DNI no es válido"),
    (Step.ASK_DOC_NUMBER, "10117410-3", "DNI no es válido"),
    (Step.ASK_DOC_NUMBER, "1234567", "DNI no es válido"),
    (Step.CHOOSE_KIND, "gaseosa", "No te entendí"),
    (Step.CHOOSE_AMOUNT, "201", "montos enteros de S/ 3.00 a S/ 200.00"),
    (Step.CHOOSE_AMOUNT, "10.50", "montos enteros de S/ 3.00 a S/ 200.00"),
    (Step.CHOOSE_AMOUNT, "gaseosa", "No te entendí"),
    (Step.ASK_AMOUNT, "2", "montos enteros de S/ 3.00 a S/ 200.00"),
    (Step.ASK_AMOUNT, "201", "montos enteros de S/ 3.00 a S/ 200.00"),
    (Step.ASK_AMOUNT, "10.50", "montos enteros de S/ 3.00 a S/ 200.00"),
    (Step.ASK_AMOUNT, "dos", "montos enteros de S/ 3.00 a S/ 200.00"),
    (Step.CHOOSE_PACKAGE, "paq-99", "No te entendí"),
    (Step.CONFIRM, "tal vez", "No te entendí"),
    (Step.CHANGE, "todo", "No te entendí"),
    (Step.AWAIT_PAYMENT, "¿y ahora?", "sigue activo"),
]


@pytest.mark.parametrize(("at", "typed", "told"), WRONG_INPUTS)
def test_wrong_input_says_what_is_expected_and_keeps_the_step(
    at: Step, typed: str, told: str
) -> None:
    session = session_at(at)

    result = step(session, Text(typed), RULES)

    assert result.session == session
    assert told in only_reply(result).text


GARBAGE = {
    "5000-letters": "x" * 5000,
    "5000-digits": "9" * 5000,
    "emoji": "😀🔥",
    "zero-width": "\u200b\u200c\u200d",
    "rtl-override": "\u202e987654321",
    "non-ascii-digit": "\u1369",  # ETHIOPIC DIGIT ONE: isdigit() but not int()-able
    "empty": "",
}
# The promo question is optional: like IDLE, anything but an answer starts afresh.
STEPS_WITH_A_QUESTION = [s for s in ALL_STEPS if s not in (Step.IDLE, Step.ASK_PROMOS)]


@pytest.mark.parametrize("typed", GARBAGE.values(), ids=GARBAGE.keys())
@pytest.mark.parametrize("at", STEPS_WITH_A_QUESTION)
def test_garbage_keeps_the_session_as_it_was(at: Step, typed: str) -> None:
    session = session_at(at)

    result = step(session, Text(typed), RULES)

    assert result.session == session


@pytest.mark.parametrize("typed", GARBAGE.values(), ids=GARBAGE.keys())
@pytest.mark.parametrize("at", STEPS_WITH_A_QUESTION)
def test_garbage_gets_a_short_spanish_reply(at: Step, typed: str) -> None:
    result = step(session_at(at), Text(typed), RULES)

    text = only_reply(result).text
    assert 0 < len(text) < 400
    assert _SPANISH_WORD.search(text)


@pytest.mark.parametrize("at", STEPS_WITH_A_QUESTION)
def test_button_not_offered_at_the_step_is_refused(at: Step) -> None:
    session = session_at(at)

    result = step(session, Choice("pkg:no-existe"), RULES)

    assert result.session == session


# ---------------------------------------------------------- amounts as the customer reads them


def _happy_path_transitions() -> list[Transition]:
    events: list[Event] = [
        Text("hola"), Choice("accept"), Text("987654321"),
        OperatorChecked("987654321", Verdict.CLARO), Text("María Quispe"), Choice("doc:dni"),
        Text("10117410"), Choice("kind:saldo"), Choice("amount:other"), Text("25"),
        Choice("change"), Choice("change:product"), Choice("kind:paquete"),
        Choice("pkg:paq-20-ilimitado"), Choice("confirm"), CheckoutFailed(), Choice("confirm"),
        CheckoutOpened("ord-1", PAY_URL), Text("¿ya?"),
        OrderSettled(settled_order("ord-1", OrderState.REFUNDED)),
    ]  # fmt: skip
    transitions = [Transition(Session())]
    for event in events:
        transitions.append(step(transitions[-1].session, event, RULES))
    return transitions[1:]


def test_every_step_of_a_full_journey_is_answered() -> None:
    transitions = _happy_path_transitions()

    silent = [t.session.step for t in transitions if not replies(t)]
    assert silent == [Step.CHECK_NUMBER, Step.AWAIT_PAYMENT, Step.AWAIT_PAYMENT]


def _every_reply_shown() -> list[Reply]:
    """Replies of a full journey, of a re-prompt at every step and of every order outcome."""
    waiting = session_at(Step.AWAIT_PAYMENT)
    outcomes = [OrderSettled(settled_order("ord-1", state)) for state in OrderState]
    transitions = [
        *_happy_path_transitions(),
        *(step(session_at(at), Text("?"), RULES) for at in STEPS_WITH_A_QUESTION),
        *(step(waiting, outcome, RULES) for outcome in outcomes),
    ]
    return [reply for transition in transitions for reply in replies(transition)]


@pytest.mark.parametrize(
    ("text", "flagged"),
    [("Paga S/ 10.00", []), ("Paga S/ 10", ["S/ 10"]), ("S/10.5 o S/. 7", ["S/10.5", "S/. 7"])],
)
def test_amount_checker_flags_amounts_without_two_decimals(text: str, flagged: list[str]) -> None:
    assert badly_formatted_amounts(Reply(text)) == flagged


def test_every_amount_the_customer_reads_has_two_decimals() -> None:
    shown = _every_reply_shown()

    assert shown
    assert [a for reply in shown for a in badly_formatted_amounts(reply)] == []


def test_a_line_without_an_owner_never_reaches_checkout() -> None:
    session = Session(
        Step.CONFIRM, Draft(msisdn="987654321", product=credit_product(10)), None, CONSENTED
    )

    result = step(session, Choice("confirm"), RULES)

    assert result.session == session
    assert not of_type(result, OpenCheckout)


def test_returning_customer_may_type_a_new_number_at_the_greeting() -> None:
    result = step(session_at(Step.PICK_LINE), Text("912 345 678"), RULES)

    assert result.session.step is Step.CHECK_NUMBER
    assert result.effects == (CheckOperator("912345678"),)


def test_returning_customer_typing_a_saved_number_goes_straight_to_the_products() -> None:
    result = step(session_at(Step.PICK_LINE), Text("987654321"), RULES)

    assert result.session.step is Step.CHOOSE_KIND
    assert result.session.draft.owner_name is not None
