"""The recharge dialogue as a pure state machine: ``step(session, event, rules) -> Transition``.

No I/O, no clock, no ids: what the outside world knows arrives in events (an operator check, an
opened checkout, a settled order) and what must be done leaves as effects. Everything that changes
``Session.step`` lives in this module. Customer mistakes are ordinary transitions that keep
the step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from conversations import messages as msg
from conversations.catalog import (
    PRESET_SOLES,
    Catalogue,
    credit_product,
    fold,
    is_custom_amount_allowed,
    parse_document,
    parse_msisdn,
    parse_name,
    parse_soles,
)
from conversations.limits import Refusal
from conversations.messages import Option, Reply
from conversations.model import (
    DocType,
    Line,
    Order,
    OrderState,
    PersonalData,
    Product,
    ProductKind,
    Purchase,
)
from conversations.session import Draft, Payment, Session, Step

# ---------------------------------------------------------------- events (what happened)


@dataclass(frozen=True)
class Text:
    """The customer typed something (commands included)."""

    body: str


@dataclass(frozen=True)
class Choice:
    """The customer pressed a button carrying an option id."""

    option_id: str


class Verdict(StrEnum):
    CLARO = "claro"
    OTHER = "other"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class OperatorChecked:
    msisdn: str
    verdict: Verdict


@dataclass(frozen=True)
class CheckoutOpened:
    order_id: str
    url: str


@dataclass(frozen=True)
class CheckoutFailed:
    pass


@dataclass(frozen=True)
class OrderSettled:
    order: Order


@dataclass(frozen=True)
class Resumed:
    """The channel came back (e.g. the terminal demo restarted): repeat the pending question."""


@dataclass(frozen=True)
class HistoryLoaded:
    """The customer's latest orders, newest first, read for "mis recargas"."""

    orders: tuple[Order, ...]


@dataclass(frozen=True)
class PersonalDataLoaded:
    """What storage keeps about the customer, read for "mis datos"."""

    data: PersonalData


@dataclass(frozen=True)
class CheckoutRefused:
    """No link was opened: an abuse limit was reached."""

    reason: Refusal


Event = (
    Text | Choice | OperatorChecked | CheckoutOpened | CheckoutFailed | OrderSettled | Resumed
    | HistoryLoaded | PersonalDataLoaded | CheckoutRefused
)  # fmt: skip

# ---------------------------------------------------------------- effects (what to do)


@dataclass(frozen=True)
class Say:
    reply: Reply


@dataclass(frozen=True)
class CheckOperator:
    msisdn: str


@dataclass(frozen=True)
class RecordConsent:
    policy_version: str


@dataclass(frozen=True)
class RememberLine:
    line: Line


@dataclass(frozen=True)
class OpenCheckout:
    purchase: Purchase


@dataclass(frozen=True)
class CancelCheckout:
    order_id: str


@dataclass(frozen=True)
class ShowHistory:
    """Read the customer's latest orders (answered with HistoryLoaded)."""

    limit: int = 5


@dataclass(frozen=True)
class ShowPersonalData:
    """Read what is kept about the customer (answered with PersonalDataLoaded)."""


@dataclass(frozen=True)
class ErasePersonalData:
    """Delete the customer's personal data and anonymise their orders (after a Sí)."""


@dataclass(frozen=True)
class RecordPromos:
    """Store the promo question as asked (None) or answered (True: opt in, with the time)."""

    opt_in: bool | None


Effect = (
    Say | CheckOperator | RecordConsent | RememberLine | OpenCheckout | CancelCheckout | ShowHistory
    | ShowPersonalData | ErasePersonalData | RecordPromos
)  # fmt: skip


@dataclass(frozen=True)
class Transition:
    session: Session
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class Rules:
    """The operator's choices the dialogue depends on."""

    catalogue: Catalogue
    policy_version: str = "2026-11"
    presets: tuple[int, ...] = field(default=PRESET_SOLES)


# ---------------------------------------------------------------- options per step

_OTHER_AMOUNT = "amount:other"
_ALIASES = {
    "accept": ("si", "acepto", "ok", "de acuerdo"),
    "decline": ("no",),
    "confirm": ("si", "ok", "confirmo", "pagar"),
    "change": ("modificar", "editar"),
    "new": ("otro", "otro numero", "nuevo numero"),
    "repeat": ("repetir", "repetir ultima recarga", "la misma", "lo mismo"),
    "doc:ce": ("ce", "carne", "carnet", "carne de extranjeria"),
    "doc:pasaporte": ("pasaporte", "passport"),
    "kind:saldo": ("saldo", "recarga", "recarga de saldo"),
    "kind:paquete": ("paquete", "paquetes"),
    _OTHER_AMOUNT: ("otro", "otro monto"),
    "change:number": ("numero", "el numero"),
    "change:product": ("monto", "paquete", "producto", "monto o paquete"),
    "erase:yes": ("si", "borrar", "si, borrar"),
    "erase:no": ("no", "no borrar"),
}
_ALIASES["promos:si"] = ("si", "quiero", "ok", "alta")
_ALIASES["promos:no"] = ("no", "no gracias", "baja")
_PROMO_OPTIONS = (Option("promos:si", "Sí, quiero"), Option("promos:no", "No, gracias"))


def options(session: Session, rules: Rules) -> tuple[Option, ...]:
    """The choices offered at the session's step (empty where the customer types freely)."""
    match session.step:
        case Step.CONSENT:
            return (Option("accept", "Acepto"), Option("decline", "No acepto"))
        case Step.PICK_LINE:
            return _line_options(session)
        case Step.ASK_DOC_TYPE:
            return tuple(Option(f"doc:{t.value}", msg.DOC_LABELS[t]) for t in DocType)
        case Step.CHOOSE_KIND:
            return (Option("kind:saldo", "Recarga de saldo"), Option("kind:paquete", "Paquetes"))
        case Step.CHOOSE_AMOUNT:
            presets = tuple(Option(f"amount:{s}", f"S/ {s}.00") for s in rules.presets)
            return (*presets, Option(_OTHER_AMOUNT, "Otro monto"))
        case Step.CHOOSE_PACKAGE:
            return tuple(
                Option(f"pkg:{p.code}", msg.product_label(p)) for p in rules.catalogue.packages
            )
        case Step.CONFIRM:
            return (
                Option("confirm", "Confirmar"),
                Option("change", "Cambiar"),
                Option("cancel", "Cancelar"),
            )
        case Step.CHANGE:
            return (Option("change:number", "Número"), Option("change:product", "Monto o paquete"))
        case Step.CONFIRM_ERASE:
            return (Option("erase:yes", "Sí, borrar"), Option("erase:no", "No"))
        case Step.ASK_PROMOS:
            return _PROMO_OPTIONS
        case _:
            return ()


def _line_options(session: Session) -> tuple[Option, ...]:
    profile = session.profile
    lines = tuple(Option(f"line:{ln.msisdn}", msg.saved_line_label(ln)) for ln in profile.lines)
    repeat = (Option("repeat", msg.repeat_label(profile.last)),) if profile.last else ()
    return (*repeat, *lines, Option("new", "Otro número"))


def resolve(choices: tuple[Option, ...], text: str) -> str | None:
    """Map typed text to an option id: its number in the list, its label, or a known synonym."""
    folded = fold(text)
    # isdecimal, not isdigit: int() rejects digits such as '፩', and a short length guard
    # keeps int() under Python's 4,300-digit limit for a pasted wall of digits.
    if folded.isdecimal() and len(folded) <= 3 and 1 <= int(folded) <= len(choices):
        return choices[int(folded) - 1].id
    for option in choices:
        if folded in (fold(option.label), option.id, *_ALIASES.get(option.id, ())):
            return option.id
    return None


# ---------------------------------------------------------------- the transition function

_COMMANDS = {
    "start": "restart", "recargar": "restart", "menu": "restart", "inicio": "restart",
    "cancelar": "cancel", "cancel": "cancel",
    "ayuda": "help", "help": "help",
    "misrecargas": "history",
    "misdatos": "my_data", "borrar": "erase",
    "promos": "promos",  # /promos si | /promos no
}  # fmt: skip
_PHRASES = {"mis recargas": "history", "mis datos": "my_data", "borrar mis datos": "erase"}


def command_of(event: Event) -> str | None:
    """Name the global command a typed text asks for (``/cancelar``, ``cancelar``...), if any."""
    if not isinstance(event, Text):
        return None
    words = fold(event.body).split(maxsplit=1)
    # "/start@RecargaBot" in groups, "/start promo" from a Telegram deep link.
    word = words[0].removeprefix("/").split("@", 1)[0] if words else ""
    return _COMMANDS.get(word) or _PHRASES.get(" ".join(fold(event.body).split()))


def step(session: Session, event: Event, rules: Rules) -> Transition:
    """Decide what happens next. Pure: no I/O, no clock, no channel knowledge."""
    answered = _chosen(session, event, rules) or command_of(event)
    if session.step is Step.ASK_PROMOS and not answered:
        session = replace(session, step=Step.IDLE)  # optional: any other message lapses it
    if isinstance(event, OrderSettled):
        return _settled(session, event.order)
    if isinstance(event, Resumed):
        return Transition(session, () if session.step is Step.IDLE else _prompt(session, rules))
    if isinstance(event, HistoryLoaded):
        pending = () if session.step is Step.IDLE else _prompt(session, rules)
        return Transition(session, (Say(msg.history(event.orders)), *pending))
    if isinstance(event, PersonalDataLoaded):
        pending = () if session.step is Step.IDLE else _prompt(session, rules)
        return Transition(session, (Say(msg.my_data(event.data)), *pending))
    command = command_of(event)
    if command == "my_data":
        return Transition(session, (ShowPersonalData(),))
    if command == "erase":
        asking = replace(session, step=Step.CONFIRM_ERASE)
        return Transition(asking, _prompt(asking, rules))
    if command == "promos":
        return _promos_command(session, event, rules)
    if command == "cancel":
        return _cancel(session)
    if command == "help":
        return Transition(session, (Say(msg.help_text()), *_prompt(session, rules)))
    if command == "history":
        return Transition(session, (ShowHistory(),))
    if command == "restart" or session.step is Step.IDLE:
        return _greet(session, rules)
    handler = _HANDLERS.get(session.step)
    if handler is None:
        return Transition(session, _prompt(session, rules))
    return handler(session, event, rules)


def _greet(session: Session, rules: Rules) -> Transition:
    if session.payment is not None:
        return Transition(session, _prompt(session, rules))
    fresh = Session(profile=session.profile)
    if not fresh.profile.consented:
        fresh = replace(fresh, step=Step.CONSENT)
        return Transition(fresh, (Say(msg.welcome_new(options(fresh, rules))),))
    if fresh.profile.lines:
        fresh = replace(fresh, step=Step.PICK_LINE)
        return Transition(fresh, (Say(msg.welcome_back(options(fresh, rules))),))
    return _go(fresh, Step.ASK_NUMBER, rules)


def _cancel(session: Session) -> Transition:
    effects: tuple[Effect, ...] = (Say(msg.cancelled()),)
    if session.payment and session.payment.order_id:
        effects = (CancelCheckout(session.payment.order_id), *effects)
    return Transition(Session(profile=session.profile), effects)


def _go(session: Session, target: Step, rules: Rules, **draft: Any) -> Transition:
    """Move to ``target`` (updating the draft) and ask its question."""
    moved = replace(session, step=target, draft=replace(session.draft, **draft))
    return Transition(moved, _prompt(moved, rules))


def _prompt(session: Session, rules: Rules, *, saved: bool = False) -> tuple[Effect, ...]:
    """The question the customer must answer at the session's step."""
    choices = options(session, rules)
    draft = session.draft
    match session.step:
        case Step.IDLE:
            return (Say(msg.help_text()),)
        case Step.CONSENT:
            return (Say(msg.consent_again(choices)),)
        case Step.PICK_LINE:
            return (Say(msg.welcome_back(choices)),)
        case Step.ASK_NUMBER:
            return (Say(msg.ask_number()),)
        case Step.CHECK_NUMBER:
            return (Say(msg.checking_number()),)
        case Step.ASK_NAME:
            return (Say(msg.ask_name()),)
        case Step.ASK_DOC_TYPE:
            return (Say(msg.ask_doc_type(choices)),)
        case Step.ASK_DOC_NUMBER:
            return (Say(msg.ask_doc_number(draft.doc_type or DocType.DNI)),)
        case Step.CHOOSE_KIND:
            return (Say(msg.ask_kind(draft.msisdn or "", choices, saved=saved)),)
        case Step.CHOOSE_AMOUNT:
            return (Say(msg.ask_amount(choices)),)
        case Step.ASK_AMOUNT:
            return (Say(msg.ask_custom_amount()),)
        case Step.CHOOSE_PACKAGE:
            return (Say(msg.ask_package(choices)),)
        case Step.CONFIRM:
            purchase = draft.purchase
            return (Say(msg.summary(purchase, choices)),) if purchase else ()
        case Step.CHANGE:
            return (Say(msg.ask_change(choices)),)
        case Step.ASK_PROMOS:
            return (Say(msg.ask_promos(choices)),)
        case Step.CONFIRM_ERASE:
            return (Say(msg.confirm_erase(choices)),)
        case Step.AWAIT_PAYMENT:
            payment = session.payment
            return (Say(msg.payment_pending(payment.amount_cents, payment.url)),) if payment else ()
    return ()


def _chosen(session: Session, event: Event, rules: Rules) -> str | None:
    choices = options(session, rules)
    if isinstance(event, Choice):
        return event.option_id if any(o.id == event.option_id for o in choices) else None
    return resolve(choices, event.body) if isinstance(event, Text) else None


def _reask(session: Session, rules: Rules) -> Transition:
    return Transition(session, (Say(msg.bad_choice(options(session, rules))),))


def _on_consent(session: Session, event: Event, rules: Rules) -> Transition:
    match _chosen(session, event, rules):
        case "accept":
            consented = replace(session, profile=replace(session.profile, consented=True))
            moved = _go(consented, Step.ASK_NUMBER, rules)
            return Transition(moved.session, (RecordConsent(rules.policy_version), *moved.effects))
        case "decline":
            return Transition(Session(profile=session.profile), (Say(msg.declined()),))
    return Transition(session, _prompt(session, rules))


def _on_pick_line(session: Session, event: Event, rules: Rules) -> Transition:
    chosen = _chosen(session, event, rules)
    profile = session.profile
    if chosen == "new":
        return _go(session, Step.ASK_NUMBER, rules)
    if chosen == "repeat" and profile.last:
        return _repeat(session, profile.last, rules)
    line = next((ln for ln in profile.lines if f"line:{ln.msisdn}" == chosen), None)
    if line is None and chosen is None and parse_msisdn(_typed(event) or ""):
        return _on_number(session, event, rules)  # a returning customer typed a new number
    if line is None:
        return _reask(session, rules)
    return _go(replace(session, draft=Draft.of(line)), Step.CHOOSE_KIND, rules)


def _repeat(session: Session, last: Purchase, rules: Rules) -> Transition:
    product = _current_price(last.product, rules)
    if product is None:
        moved = _go(replace(session, draft=Draft.of(last.line)), Step.CHOOSE_KIND, rules)
        return Transition(moved.session, (Say(msg.package_gone()), *moved.effects))
    return _go(replace(session, draft=Draft.of(last.line, product)), Step.CONFIRM, rules)


def _current_price(product: Product, rules: Rules) -> Product | None:
    """The product as sold today: last month's package may have changed or gone."""
    if product.kind is ProductKind.CREDIT:
        return credit_product(product.price_cents // 100)
    return rules.catalogue.package(product.code)


def _typed(event: Event) -> str | None:
    return event.body if isinstance(event, Text) else None


def _on_number(session: Session, event: Event, rules: Rules) -> Transition:
    msisdn = parse_msisdn(_typed(event) or "")
    if msisdn is None:
        return Transition(session, (Say(msg.bad_number()),))
    saved = next((ln for ln in session.profile.lines if ln.msisdn == msisdn), None)
    if saved:
        return _go(replace(session, draft=Draft.of(saved)), Step.CHOOSE_KIND, rules)
    checking = replace(session, step=Step.CHECK_NUMBER, draft=Draft(msisdn=msisdn))
    return Transition(checking, (CheckOperator(msisdn),))


def _on_check(session: Session, event: Event, rules: Rules) -> Transition:
    if isinstance(event, Text):
        # Only reachable if the check's answer was lost: take the text as the number again.
        return _on_number(session, event, rules)
    if not isinstance(event, OperatorChecked) or event.msisdn != session.draft.msisdn:
        return Transition(session, _prompt(session, rules))
    if event.verdict is Verdict.OTHER:
        return Transition(
            replace(session, step=Step.ASK_NUMBER), (Say(msg.not_claro(event.msisdn)),)
        )
    return _go(session, Step.ASK_NAME, rules)


def _on_name(session: Session, event: Event, rules: Rules) -> Transition:
    name = parse_name(_typed(event) or "")
    if name is None:
        return Transition(session, (Say(msg.bad_name()),))
    return _go(session, Step.ASK_DOC_TYPE, rules, owner_name=name)


def _on_doc_type(session: Session, event: Event, rules: Rules) -> Transition:
    chosen = _chosen(session, event, rules)
    if chosen is None:
        return _reask(session, rules)
    return _go(session, Step.ASK_DOC_NUMBER, rules, doc_type=DocType(chosen.removeprefix("doc:")))


def _on_doc_number(session: Session, event: Event, rules: Rules) -> Transition:
    doc_type = session.draft.doc_type or DocType.DNI
    number = parse_document(doc_type, _typed(event) or "")
    if number is None:
        return Transition(session, (Say(msg.bad_doc_number(doc_type)),))
    draft = replace(session.draft, doc_number=number)
    line = draft.line
    assert line is not None, "every field of the line is set by the earlier steps"
    saved = replace(
        session, step=Step.CHOOSE_KIND, draft=draft, profile=session.profile.with_line(line)
    )
    return Transition(saved, (RememberLine(line), *_prompt(saved, rules, saved=True)))


def _on_kind(session: Session, event: Event, rules: Rules) -> Transition:
    match _chosen(session, event, rules):
        case "kind:saldo":
            return _go(session, Step.CHOOSE_AMOUNT, rules)
        case "kind:paquete":
            return _go(session, Step.CHOOSE_PACKAGE, rules)
    return _reask(session, rules)


def _on_amount(session: Session, event: Event, rules: Rules) -> Transition:
    chosen = _chosen(session, event, rules)
    if chosen == _OTHER_AMOUNT:
        return _go(session, Step.ASK_AMOUNT, rules)
    if chosen is None:
        typed = parse_soles(_typed(event) or "")
        chosen = f"amount:{typed}" if typed in rules.presets else None
    if chosen is None:
        return _reask(session, rules)
    return _go(session, Step.CONFIRM, rules, product=credit_product(int(chosen.split(":")[1])))


def _on_custom_amount(session: Session, event: Event, rules: Rules) -> Transition:
    amount = parse_soles(_typed(event) or "")
    if amount is None or not is_custom_amount_allowed(amount):
        return Transition(session, (Say(msg.bad_amount()),))
    return _go(session, Step.CONFIRM, rules, product=credit_product(amount))


def _on_package(session: Session, event: Event, rules: Rules) -> Transition:
    chosen = _chosen(session, event, rules)
    product = rules.catalogue.package(chosen.removeprefix("pkg:")) if chosen else None
    if product is None:
        return _reask(session, rules)
    return _go(session, Step.CONFIRM, rules, product=product)


def _on_confirm(session: Session, event: Event, rules: Rules) -> Transition:
    chosen = _chosen(session, event, rules)
    purchase = session.draft.purchase
    if chosen == "cancel":
        return _cancel(session)
    if chosen == "change":
        return _go(session, Step.CHANGE, rules)
    if chosen != "confirm" or purchase is None:
        return _reask(session, rules)
    waiting = replace(
        session, step=Step.AWAIT_PAYMENT, payment=Payment(purchase.product.price_cents)
    )
    return Transition(waiting, (OpenCheckout(purchase),))


def _on_change(session: Session, event: Event, rules: Rules) -> Transition:
    match _chosen(session, event, rules):
        case "change:number":
            if session.profile.lines:
                return _go(session, Step.PICK_LINE, rules)
            return _go(session, Step.ASK_NUMBER, rules)
        case "change:product":
            return _go(session, Step.CHOOSE_KIND, rules)
    return _reask(session, rules)


def _on_payment(session: Session, event: Event, rules: Rules) -> Transition:
    payment = session.payment
    if payment is None:
        return _greet(session, rules)
    if isinstance(event, CheckoutOpened) and payment.order_id is None:
        opened = replace(payment, order_id=event.order_id, url=event.url)
        return Transition(
            replace(session, payment=opened),
            (Say(msg.payment_link(payment.amount_cents, event.url)),),
        )
    if isinstance(event, CheckoutRefused) and payment.order_id is None:
        return Transition(Session(profile=session.profile), (Say(msg.limit_reached(event.reason)),))
    if isinstance(event, CheckoutFailed) and payment.order_id is None:
        back = replace(session, step=Step.CONFIRM, payment=None)
        return Transition(back, (Say(msg.checkout_failed(options(back, rules))),))
    return Transition(session, _prompt(session, rules))


def _settled(session: Session, order: Order) -> Transition:
    """Tell the customer how an order ended; free the chat if it was waiting on that order."""
    profile = session.profile
    if order.state is OrderState.COMPLETED:
        profile = replace(profile.with_line(order.purchase.line), last=order.purchase)
    updated = replace(session, profile=profile)
    if session.payment and session.payment.order_id == order.id:
        updated = Session(profile=profile)
    if order.state is OrderState.COMPLETED and not profile.promos_asked and _idle(updated):
        return _ask_promos(updated, msg.settled(order))
    return Transition(updated, (Say(msg.settled(order)),))


def _on_erase(session: Session, event: Event, rules: Rules) -> Transition:
    """Erase after a Sí (cancelling an open link first); a No goes back to where the chat was."""
    match _chosen(session, event, rules):
        case "erase:yes":
            cancel = _cancel(session).effects[:-1]  # the CancelCheckout, if a link was open
            return Transition(Session(), (*cancel, ErasePersonalData(), Say(msg.erased())))
        case "erase:no":
            if session.payment is not None:
                back = replace(session, step=Step.AWAIT_PAYMENT)
                return Transition(back, (Say(msg.erase_kept()), *_prompt(back, rules)))
            return Transition(Session(profile=session.profile), (Say(msg.erase_kept()),))
    return _reask(session, rules)


# ---------------------------------------------------------------- promos: asked once, /promos si|no


def _idle(session: Session) -> bool:
    return session.step is Step.IDLE and session.payment is None


def _ask_promos(session: Session, told: Reply) -> Transition:
    """After the first completed recharge, ask once, in the same message, about promos."""
    asked = replace(session, step=Step.ASK_PROMOS)
    asked = replace(asked, profile=replace(asked.profile, promos_asked=True))
    question = msg.ask_promos(_PROMO_OPTIONS)
    reply = Reply(f"{told.text}\n\n{question.text}", question.options)
    return Transition(asked, (Say(reply), RecordPromos(None)))


def _on_promos(session: Session, event: Event, rules: Rules) -> Transition:
    # Only answers reach here: step() lapses the question on anything else.
    return _promos_set(session, _chosen(session, event, rules) == "promos:si", rules)


def _promos_command(session: Session, event: Event, rules: Rules) -> Transition:
    """``/promos si`` or ``/promos no``; anything else explains the command."""
    words = fold(_typed(event) or "").split()
    answer = words[1] if len(words) > 1 else ""
    if answer in ("si", "no"):
        return _promos_set(session, answer == "si", rules)
    return Transition(session, (Say(msg.promos_usage()), *_prompt(session, rules)))


def _promos_set(session: Session, opt_in: bool, rules: Rules) -> Transition:
    if session.step is Step.ASK_PROMOS:
        session = replace(session, step=Step.IDLE)
    session = replace(session, profile=replace(session.profile, promos_asked=True))
    pending = () if session.step is Step.IDLE else _prompt(session, rules)
    said = Say(msg.promos_on() if opt_in else msg.promos_off())
    return Transition(session, (RecordPromos(opt_in), said, *pending))


_HANDLERS: dict[Step, Callable[[Session, Event, Rules], Transition]] = {
    Step.CONFIRM_ERASE: _on_erase,
    Step.CONSENT: _on_consent,
    Step.PICK_LINE: _on_pick_line,
    Step.ASK_NUMBER: _on_number,
    Step.CHECK_NUMBER: _on_check,
    Step.ASK_NAME: _on_name,
    Step.ASK_DOC_TYPE: _on_doc_type,
    Step.ASK_DOC_NUMBER: _on_doc_number,
    Step.CHOOSE_KIND: _on_kind,
    Step.CHOOSE_AMOUNT: _on_amount,
    Step.ASK_AMOUNT: _on_custom_amount,
    Step.CHOOSE_PACKAGE: _on_package,
    Step.CONFIRM: _on_confirm,
    Step.CHANGE: _on_change,
    Step.AWAIT_PAYMENT: _on_payment,
    Step.ASK_PROMOS: _on_promos,
}
