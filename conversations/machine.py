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
    parse_name,
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
from conversations.reading import FILLERS, Field, Intent, Reading, read, split_document
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


@dataclass(frozen=True)
class CancelAnswered:
    """What cancelling the chat's order did: the order as it stands now, and whether the card
    was charged (None when the gateway could not say)."""

    order: Order | None
    charged: bool | None


@dataclass(frozen=True)
class HandedBack:
    """A person who had the chat gives it back to the bot (from the operators' console)."""


Event = (
    Text | Choice | OperatorChecked | CheckoutOpened | CheckoutFailed | OrderSettled | Resumed
    | HistoryLoaded | PersonalDataLoaded | CheckoutRefused | CancelAnswered | HandedBack
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
    """Cancel the order and close its link (answered with CancelAnswered)."""

    order_id: str


@dataclass(frozen=True)
class CallPerson:
    """Hand the chat to the operators: a customer asked for a person, or has a complaint."""

    complaint: bool


@dataclass(frozen=True)
class NoteForPerson:
    """Keep what the customer wrote for the person who has the chat; ``opens``: the message
    that asked for a person (the start of what the operators' inbox shows)."""

    text: str
    opens: bool = False


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
    | ShowPersonalData | ErasePersonalData | RecordPromos | CallPerson | NoteForPerson
)  # fmt: skip
# What a step keeps of the customer (consent, the promo answer, a saved line): stored with the
# chat's new state, in its save.
ProfileChange = RecordConsent | RecordPromos | RememberLine


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
    service_hours: str = "de lunes a sábado, de 9:00 a 18:00"  # when a person answers
    complaints_url: str | None = None  # the virtual Libro de Reclamaciones (Indecopi)


# ---------------------------------------------------------------- options per step

_OTHER_AMOUNT = "amount:other"
_REPEAT = (
    "repetir", "repetir ultima recarga", "la misma", "lo mismo", "igual", "repite", "el mismo",
    "lo de siempre", "el de siempre", "la de siempre", "igual que la ultima", "otra vez",
)  # fmt: skip
_ALIASES = {
    "accept": ("si", "acepto", "ok", "de acuerdo"),
    "decline": ("no",),
    "confirm": ("si", "ok", "confirmo", "pagar"),
    "change": ("modificar", "editar", "cambiar"),
    "new": ("otro", "otro numero", "nuevo numero", "otra linea", "nuevo"),
    "repeat": _REPEAT,
    "doc:dni": ("dni",),
    "doc:ce": ("ce", "carne", "carnet", "carne de extranjeria", "extranjeria"),
    "doc:pasaporte": ("pasaporte", "passport"),
    "kind:saldo": ("saldo", "recarga", "recarga de saldo"),
    "kind:paquete": ("paquete", "paquetes"),
    _OTHER_AMOUNT: ("otro", "otro monto", "otra cantidad"),
    "change:number": ("numero", "el numero", "linea"),
    "change:owner": ("titular", "nombre", "el titular"),
    "change:document": ("documento", "el documento", "dni"),
    "change:product": ("monto", "paquete", "producto", "monto o paquete"),
    "erase:yes": ("si", "borrar", "si, borrar"),
    "erase:no": ("no", "no borrar"),
}
_ALIASES["promos:si"] = ("si", "quiero", "ok", "alta")
_ALIASES["promos:no"] = ("no", "no gracias", "baja")
_PROMO_OPTIONS = (Option("promos:si", "Sí, quiero"), Option("promos:no", "No, gracias"))
# Steps whose options answer a yes/no question: "sí pe", "dale", "no" pick the first or second.
_YES_NO = {
    Step.CONSENT: ("accept", "decline"),
    Step.CONFIRM: ("confirm", "change"),
    Step.CONFIRM_ERASE: ("erase:yes", "erase:no"),
    Step.ASK_PROMOS: ("promos:si", "promos:no"),
}
# Where "atrás" / "volver" leads; the answers given stay in the draft.
_BACK = {
    Step.ASK_NAME: Step.ASK_NUMBER,
    Step.ASK_DOC_TYPE: Step.ASK_NAME,
    Step.ASK_DOC_NUMBER: Step.ASK_DOC_TYPE,
    Step.CHOOSE_AMOUNT: Step.CHOOSE_KIND,
    Step.CHOOSE_PACKAGE: Step.CHOOSE_KIND,
    Step.ASK_AMOUNT: Step.CHOOSE_AMOUNT,
    Step.CHANGE: Step.CONFIRM,
}
# Steps where a correction ("cambiar titular", "no, el número es …") can take the chat back.
_FIELDS = frozenset(
    (Step.ASK_NAME, Step.ASK_DOC_TYPE, Step.ASK_DOC_NUMBER, Step.CHOOSE_KIND, Step.CHOOSE_AMOUNT,
     Step.ASK_AMOUNT, Step.CHOOSE_PACKAGE, Step.CONFIRM, Step.CHANGE, Step.PICK_LINE)
)  # fmt: skip
_CAPTURED = frozenset(OrderState) - {
    OrderState.AWAITING_PAYMENT, OrderState.CANCELLED, OrderState.EXPIRED
}  # fmt: skip


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
            return (
                Option("change:number", "Número"),
                Option("change:owner", "Titular"),
                Option("change:document", "Documento"),
                Option("change:product", "Monto o paquete"),
            )
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


def resolve(choices: tuple[Option, ...], text: str, *, numbered: bool = True) -> str | None:
    """Map typed text to an option id: its number in the list, its label, or a known synonym.

    ``numbered=False`` where the options are figures (amounts): there a number is never a
    position, so "7" cannot pick the seventh option.
    """
    folded = " ".join(w for w in fold(text).replace(",", " ").split() if w not in _POLITE)
    # isdecimal, not isdigit: int() rejects digits such as '፩', and a short length guard
    # keeps int() under Python's 4,300-digit limit for a pasted wall of digits.
    if numbered and folded.isdecimal() and len(folded) <= 3 and 1 <= int(folded) <= len(choices):
        return choices[int(folded) - 1].id
    if numbered and (place := _ORDINALS.get(folded)) is not None and place < len(choices):
        return choices[place].id  # "el primero", "la segunda"
    for option in choices:
        if folded in (fold(option.label), option.id, *_ALIASES.get(option.id, ())):
            return option.id
    return None


_ORDINALS = {  # "primero", "la segunda", "el tercero": a place in the list
    f"{article}{word}{ending}": place
    for place, word in enumerate(("primer", "segund", "tercer", "cuart"))
    for article in ("", "el ", "la ")
    for ending in ("o", "a")
}
_POLITE = frozenset(("porfa", "por", "favor", "xfa", "pls", "plis", "pe", "pues", "gracias"))

# ---------------------------------------------------------------- the transition function

_COMMANDS = {
    "start": "restart", "recargar": "restart", "menu": "restart", "inicio": "restart",
    "bot": "restart",
    "cancelar": "cancel", "cancel": "cancel",
    "ayuda": "help", "help": "help",
    "misrecargas": "history",
    "misdatos": "my_data", "borrar": "erase",
    "promos": "promos",  # /promos si | /promos no
    "asesor": "agent", "reclamo": "complaint",
}  # fmt: skip
_PHRASES = {"mis recargas": "history", "mis datos": "my_data", "borrar mis datos": "erase"}


def command_of(event: Event) -> str | None:
    """Name the global command a typed text asks for (``/cancelar``, ``cancelar``...), if any."""
    if not isinstance(event, Text):
        return None
    words = fold(event.body).split(maxsplit=1)
    # "/start@RecargaBot" in groups, "/start promo" from a Telegram deep link.
    word = words[0].removeprefix("/").split("@", 1)[0] if words else ""
    if len(words) > 1 and not words[0].startswith("/") and word not in ("promos",):
        word = ""  # a bare word opens a command only alone ("recargar", not "recarga 10 al …")
    return _COMMANDS.get(word) or _PHRASES.get(" ".join(fold(event.body).split()))


_INTENT_COMMANDS = {
    Intent.CANCEL: "cancel", Intent.AGENT: "agent", Intent.COMPLAINT: "complaint",
    Intent.HELP: "help", Intent.BACK: "back",
}  # fmt: skip


def step(session: Session, event: Event, rules: Rules) -> Transition:
    """Decide what happens next. Pure: no I/O, no clock, no channel knowledge."""
    if isinstance(event, OrderSettled):
        return _settled(session, event.order)
    if isinstance(event, CancelAnswered):
        return Transition(session, (Say(msg.cancel_outcome(event.order, charged=event.charged)),))
    if isinstance(event, Resumed | HistoryLoaded | PersonalDataLoaded):
        return _aside(session, event, rules)
    if isinstance(event, HandedBack):
        return _handed_back(session)
    if session.step is Step.HANDOFF:
        return _in_handoff(session, event, rules)
    reading = read(event.body, rules.catalogue.packages) if isinstance(event, Text) else None
    answered = _chosen(session, event, rules, reading)
    command = command_of(event)
    if command is None and reading is not None and answered is None:
        command = _INTENT_COMMANDS.get(reading.intent) if reading.intent else None
    if session.step is Step.ASK_PROMOS and not answered and not command:
        session = replace(session, step=Step.IDLE)  # optional: any other message lapses it
    if command is not None:
        return _command(session, event, command, rules)
    if session.step is Step.IDLE:
        return _from_idle(session, reading, rules)
    if reading is not None and reading.correction and not answered and session.step in _FIELDS:
        return _correct(session, reading, rules)
    if reading is not None and not answered and (chat := _chatter(session, reading, rules)):
        return chat
    handler = _HANDLERS.get(session.step)
    if handler is None:
        return Transition(session, _prompt(session, rules))
    return handler(session, _Input(event, reading, answered), rules)


@dataclass(frozen=True)
class _Input:
    """One customer message as each step handler sees it."""

    event: Event
    reading: Reading | None  # None for a button press
    chosen: str | None  # the option of the step it picks, if any

    @property
    def text(self) -> str:
        return self.event.body if isinstance(self.event, Text) else ""


def _aside(
    session: Session, event: Resumed | HistoryLoaded | PersonalDataLoaded, rules: Rules
) -> Transition:
    """An answer read for the customer, then the question still pending (if any)."""
    quiet = session.step in (Step.IDLE, Step.HANDOFF)
    pending = () if quiet else _prompt(session, rules)
    match event:
        case HistoryLoaded(orders):
            return Transition(session, (Say(msg.history(orders)), *pending))
        case PersonalDataLoaded(data):
            return Transition(session, (Say(msg.my_data(data)), *pending))
    return Transition(session, pending)


def _command(session: Session, event: Event, command: str, rules: Rules) -> Transition:
    match command:
        case "my_data":
            return Transition(session, (ShowPersonalData(),))
        case "erase":
            asking = replace(session, step=Step.CONFIRM_ERASE)
            return Transition(asking, _prompt(asking, rules))
        case "promos":
            return _promos_command(session, event, rules)
        case "cancel":
            return _cancel(session)
        case "help":
            pending = () if session.step is Step.IDLE else _prompt(session, rules)
            return Transition(session, (Say(msg.help_text()), *pending))
        case "history":
            return Transition(session, (ShowHistory(),))
        case "agent" | "complaint":
            return _handoff(session, event, rules, complaint=command == "complaint")
        case "back":
            return _back(session, rules)
    return _restart(session, rules)


def _chatter(session: Session, reading: Reading, rules: Rules) -> Transition | None:
    """Small talk mid-purchase: answered in kind, then the pending question again."""
    if reading.intent is Intent.RECHARGE and not reading.has_data:
        if session.step is Step.CHOOSE_KIND:
            return None  # there "recarga" answers the question: credit
        return Transition(session, _prompt(session, rules))  # "quiero recargar": we are at it
    if not reading.chatter or (session.step in _YES_NO and reading.answer is not None):
        return None
    prompt = _prompt(session, rules)
    if reading.intent is Intent.GREETING and prompt and isinstance(prompt[0], Say):
        return Transition(session, (Say(msg.resume(prompt[0].reply)), *prompt[1:]))
    return Transition(session, (Say(msg.chatter(reading.intent is Intent.THANKS)), *prompt))


def _from_idle(session: Session, reading: Reading | None, rules: Rules) -> Transition:
    if reading is not None and reading.chatter and reading.intent is not Intent.GREETING:
        return Transition(session, (Say(msg.idle_chatter(reading.intent is Intent.THANKS)),))
    return _greet(session, rules, reading)


def _restart(session: Session, rules: Rules) -> Transition:
    """ "recargar", "menú", /start: begin again, telling the truth about a paid order first."""
    order = session.order
    if session.payment is not None and order is not None and order.state in _CAPTURED:
        fresh = _greet(Session(profile=session.profile), rules, None)
        return Transition(fresh.session, (Say(msg.order_status(order)), *fresh.effects))
    return _greet(session, rules, None)


def _greet(session: Session, rules: Rules, reading: Reading | None) -> Transition:
    if session.payment is not None:
        return Transition(session, _prompt(session, rules))
    fresh = Session(profile=session.profile)
    if not fresh.profile.consented:
        fresh = replace(fresh, step=Step.CONSENT, draft=_wanted(reading, rules))
        return Transition(fresh, (Say(msg.welcome_new(options(fresh, rules))),))
    if reading is not None and reading.has_data:
        return _absorb(fresh, reading, rules)
    if fresh.profile.lines:
        fresh = replace(fresh, step=Step.PICK_LINE)
        return Transition(fresh, (Say(msg.welcome_back(options(fresh, rules))),))
    return _go(fresh, Step.ASK_NUMBER, rules)


def _wanted(reading: Reading | None, rules: Rules) -> Draft:
    """What a first message asks to buy, kept through the privacy notice; not the number,
    which is personal data and is asked again once the notice is accepted."""
    if reading is None:
        return Draft()
    amount = reading.money or (reading.figure if reading.intent is Intent.RECHARGE else None)
    if amount is not None and amount.whole and is_custom_amount_allowed(amount.soles):
        return Draft(product=credit_product(amount.soles))
    return Draft(product=rules.catalogue.package(reading.package) if reading.package else None)


def _cancel(session: Session) -> Transition:
    """Cancel what the chat is doing; an order's fate is told once the service has tried."""
    reset = Session(profile=session.profile)
    payment, order = session.payment, session.order
    if payment is None or payment.order_id is None:
        return Transition(reset, (Say(msg.cancelled()),))
    if order is not None and order.state in _CAPTURED:
        return Transition(reset, (Say(msg.cancel_outcome(order, charged=True)),))
    return Transition(reset, (CancelCheckout(payment.order_id),))


def _handoff(session: Session, event: Event, rules: Rules, *, complaint: bool) -> Transition:
    said = (
        msg.complaint(rules.service_hours, rules.complaints_url)
        if complaint
        else msg.handoff(rules.service_hours)
    )
    order = session.order  # a paid order's state first: "ya pagué y no me llega"
    told = (Say(msg.order_status(order)),) if order and order.state in _CAPTURED else ()
    asked = _note(event, opens=True)
    return Transition(
        replace(session, step=Step.HANDOFF), (CallPerson(complaint), *asked, *told, Say(said))
    )


def _note(event: Event, *, opens: bool = False) -> tuple[Effect, ...]:
    return (NoteForPerson(event.body, opens=opens),) if isinstance(event, Text) else ()


def _in_handoff(session: Session, event: Event, rules: Rules) -> Transition:
    """A person has the chat: "menú", /bot or /start take it back; the rest is kept for a person."""
    if command_of(event) == "restart" or (
        isinstance(event, Text) and read(event.body).intent is Intent.RESTART
    ):
        back = _greet(_out_of_handoff(session), rules, None)
        return Transition(back.session, (Say(msg.back_to_bot()), *back.effects))
    if command_of(event) == "cancel":
        return _cancel(session)
    return Transition(session, _note(event))


def _handed_back(session: Session) -> Transition:
    """The person is done: the bot answers again (once; a chat already back is left alone)."""
    if session.step is not Step.HANDOFF:
        return Transition(session)
    return Transition(_out_of_handoff(session), (Say(msg.back_to_bot()),))


def _out_of_handoff(session: Session) -> Session:
    """Back with the bot: still waiting on the payment link if one was out, else idle."""
    return replace(session, step=Step.AWAIT_PAYMENT if session.payment else Step.IDLE)


def _back(session: Session, rules: Rules) -> Transition:
    target = _BACK.get(session.step)
    if session.step is Step.CONFIRM:
        product = session.draft.product
        target = (
            Step.CHOOSE_PACKAGE
            if product and product.kind is ProductKind.PACKAGE
            else (Step.CHOOSE_AMOUNT)
        )
    elif session.step in (Step.CHOOSE_KIND, Step.ASK_NUMBER) and session.profile.lines:
        target = Step.PICK_LINE
    elif session.step is Step.CHOOSE_KIND:
        target = Step.ASK_DOC_NUMBER
    if target is None:
        return Transition(session, (Say(msg.at_start()), *_prompt(session, rules)))
    moved = replace(session, step=target)
    return Transition(moved, _prompt(moved, rules))


def _go(session: Session, target: Step, rules: Rules, **draft: Any) -> Transition:
    """Move to ``target`` (updating the draft) and ask its question."""
    moved = replace(session, step=target, draft=replace(session.draft, **draft))
    return Transition(moved, _prompt(moved, rules))


def _advance(
    session: Session,
    rules: Rules,
    lead: tuple[Effect, ...] = (),
    kind: ProductKind | None = None,
) -> Transition:
    """Ask for the first thing the purchase still lacks; remember a completed or corrected line.

    ``kind`` is the kind of product the message named ("paquete al 987…"): its menu comes at once.
    """
    draft, profile = session.draft, session.profile
    line = draft.line
    saved = line is not None and line not in profile.lines
    if saved and line is not None:
        session = replace(session, profile=profile.with_line(line))
        lead = (*lead, RememberLine(line))
    target = _missing(session)
    if target is Step.CHOOSE_KIND and kind is not None:
        target = Step.CHOOSE_AMOUNT if kind is ProductKind.CREDIT else Step.CHOOSE_PACKAGE
    moved = replace(session, step=target)
    return Transition(moved, (*lead, *_prompt(moved, rules, saved=saved)))


def _missing(session: Session) -> Step:
    draft = session.draft
    if draft.msisdn is None:
        return Step.PICK_LINE if session.profile.lines else Step.ASK_NUMBER
    if draft.owner_name is None:
        return Step.ASK_NAME
    if draft.doc_type is None:
        return Step.ASK_DOC_TYPE
    if draft.doc_number is None:
        return Step.ASK_DOC_NUMBER
    return Step.CHOOSE_KIND if draft.product is None else Step.CONFIRM


def _absorb(session: Session, reading: Reading, rules: Rules) -> Transition:
    """Take every slot the message carries, then ask only for what is missing."""
    draft = session.draft
    figure = reading.figure
    if figure and reading.msisdn and figure.whole and is_custom_amount_allowed(figure.soles):
        reading = replace(reading, money=figure)  # "987654321 10": the line and its amount
    if reading.money or (figure and reading.intent is Intent.RECHARGE):
        amount = reading.amount
        assert amount is not None
        if not amount.whole or not is_custom_amount_allowed(amount.soles):
            return Transition(session, (Say(msg.bad_amount()),))
        draft = replace(draft, product=credit_product(amount.soles))
    elif reading.package and (package := rules.catalogue.package(reading.package)):
        draft = replace(draft, product=package)
    if reading.doc_type:
        number = reading.document(reading.doc_type)
        draft = replace(draft, doc_type=reading.doc_type, doc_number=number)
    session = replace(session, draft=draft)
    if reading.msisdn and reading.msisdn != draft.msisdn:
        return _new_number(session, reading.msisdn, rules, reading.kind)
    if reading.other_phone and not reading.msisdn:
        told = msg.bad_number() if reading.garbled_mobile else msg.not_a_mobile()
        return Transition(session, (Say(told),))
    return _advance(session, rules, kind=reading.kind)


def _new_number(
    session: Session, msisdn: str, rules: Rules, kind: ProductKind | None = None
) -> Transition:
    """A number to top up: a saved line brings its owner; a new one is checked first."""
    saved = next((ln for ln in session.profile.lines if ln.msisdn == msisdn), None)
    if saved:
        line = Draft.of(saved, session.draft.product)
        return _advance(replace(session, draft=line), rules, kind=kind)
    draft = replace(session.draft, msisdn=msisdn)
    return Transition(
        replace(session, step=Step.CHECK_NUMBER, draft=draft), (CheckOperator(msisdn),)
    )


def _prompt(session: Session, rules: Rules, *, saved: bool = False) -> tuple[Effect, ...]:
    """The question the customer must answer at the session's step."""
    choices = options(session, rules)
    draft = session.draft
    match session.step:
        case Step.IDLE | Step.HANDOFF:
            return ()
        case Step.CONSENT:
            return (Say(msg.consent_again(choices)),)
        case Step.PICK_LINE:
            return (Say(msg.pick_line(choices)),)
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
            return _payment_prompt(session)
    return ()


def _payment_prompt(session: Session) -> tuple[Effect, ...]:
    """While a link is out: the order's real state once it is paid, else the reminder."""
    payment, order = session.payment, session.order
    if order is not None and order.state is not OrderState.AWAITING_PAYMENT:
        return (Say(msg.order_status(order)),)
    return (Say(msg.payment_pending(payment.amount_cents, payment.url)),) if payment else ()


def _chosen(session: Session, event: Event, rules: Rules, reading: Reading | None) -> str | None:
    """The option of the step the event picks: pressed, typed, or a yes/no said as Peruvians do
    (``reading`` is what step() already read of a typed text)."""
    choices = options(session, rules)
    if isinstance(event, Choice):
        return event.option_id if any(o.id == event.option_id for o in choices) else None
    if not isinstance(event, Text):
        return None
    numbered = session.step is not Step.CHOOSE_AMOUNT
    chosen = resolve(choices, event.body, numbered=numbered)
    if chosen is None and session.step in _YES_NO and reading is not None:
        yes, no = _YES_NO[session.step]
        chosen = None if reading.answer is None else yes if reading.answer else no
    return chosen


def _reask(session: Session, rules: Rules) -> Transition:
    numbered = session.step is not Step.CHOOSE_AMOUNT
    return Transition(session, (Say(msg.bad_choice(options(session, rules), numbered=numbered)),))


def _on_consent(session: Session, given: _Input, rules: Rules) -> Transition:
    match given.chosen:
        case "accept":
            consented = replace(session, profile=replace(session.profile, consented=True))
            moved = _advance(consented, rules)
            return Transition(moved.session, (RecordConsent(rules.policy_version), *moved.effects))
        case "decline":
            return Transition(Session(profile=session.profile), (Say(msg.declined()),))
    return Transition(session, _prompt(session, rules))


def _on_pick_line(session: Session, given: _Input, rules: Rules) -> Transition:
    profile = session.profile
    if given.chosen == "new":
        return _go(session, Step.ASK_NUMBER, rules, msisdn=None, owner_name=None, doc_type=None,
                   doc_number=None)  # fmt: skip
    if given.chosen == "repeat" and profile.last:
        return _repeat(session, profile.last, rules)
    line = next((ln for ln in profile.lines if f"line:{ln.msisdn}" == given.chosen), None)
    if line is not None:
        return _advance(replace(session, draft=Draft.of(line, session.draft.product)), rules)
    reading = given.reading
    if reading is not None and (
        reading.msisdn or reading.other_phone or reading.money or reading.package
    ):
        return _absorb(session, reading, rules)  # "recarga 10 al 987…", a new number
    return _reask(session, rules)


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


def _on_number(session: Session, given: _Input, rules: Rules) -> Transition:
    reading = given.reading
    phone = reading is not None and (reading.msisdn or reading.other_phone)
    if reading is not None and (reading.money or reading.package) and not phone:
        return _absorb(session, reading, rules)  # "diez soles": kept, and the number asked again
    if reading is None or not (reading.msisdn or reading.other_phone):
        return Transition(session, (Say(msg.bad_number()),))
    return _absorb(session, reading, rules)


def _on_check(session: Session, given: _Input, rules: Rules) -> Transition:
    event = given.event
    if isinstance(event, Text):
        # Only reachable if the check's answer was lost: take the text as the number again.
        return _on_number(session, given, rules)
    if not isinstance(event, OperatorChecked) or event.msisdn != session.draft.msisdn:
        return Transition(session, _prompt(session, rules))
    if event.verdict is Verdict.OTHER:
        back = replace(session, step=Step.ASK_NUMBER, draft=replace(session.draft, msisdn=None))
        return Transition(back, (Say(msg.not_claro(event.msisdn)),))
    return _advance(session, rules)


_NAME_LEADS = (
    "mi nombre es", "me llamo", "se llama", "soy", "el titular es", "la titular es",
    "titular", "a nombre de", "esta a nombre de", "nombre", "es de", "es",
)  # fmt: skip
_NOT_NAMES = FILLERS - {"de", "del", "la", "las", "los", "y"} | {
    "no", "se", "si", "sé", "nose", "yo", "mio", "mia", "mismo", "misma"
}  # fmt: skip


_NAME_TAILS = frozenset(("porfa", "porfis", "xfa", "plis", "pls", "please", "favor", "por", "pe"))


def _on_name(session: Session, given: _Input, rules: Rules) -> Transition:
    reading = given.reading
    name = _name_of(given.text)
    if name is None and reading is not None and reading.doc_text:
        with_document = _name_and_document(session, given.text, rules)
        if with_document is not None:
            return with_document
        number = reading.document(reading.doc_type) if reading.doc_type else None
        if number is not None and reading.doc_type is not None:  # "DNI 45678912" before the name
            draft = replace(session.draft, doc_type=reading.doc_type, doc_number=number)
            return Transition(replace(session, draft=draft), (Say(msg.ask_name()),))
    if name is None or reading is None or reading.intent or reading.answer is not None:
        return Transition(session, (Say(msg.bad_name()),))
    if " " not in name and fold(name) != session.draft.single_name:
        return Transition(
            replace(session, draft=replace(session.draft, single_name=fold(name))),
            (Say(msg.one_word_name(name)),),
        )
    return _advance(
        replace(session, draft=replace(session.draft, owner_name=name, single_name=None)), rules
    )


def _name_and_document(session: Session, text: str, rules: Rules) -> Transition | None:
    """ "Rosa Huamán DNI 45678912": the owner and their document in one message."""
    said, rest = split_document(text)
    name, document = _name_of(said.strip(" ,;:-")), read(rest)
    if name is None or " " not in name:
        return None
    doc_type = document.doc_type or DocType.DNI
    number = document.document(doc_type)
    draft = replace(session.draft, owner_name=name, doc_type=doc_type, doc_number=number)
    named = replace(session, draft=replace(draft, single_name=None))
    if number is None:
        asking = replace(named, step=Step.ASK_DOC_NUMBER)
        return Transition(asking, (Say(msg.bad_doc_number(doc_type)),))
    return _advance(named, rules)


def _name_of(text: str) -> str | None:
    """The owner's name in "María Quispe", "soy María Quispe", "a nombre de María Quispe"."""
    words = text.replace(":", " ").split()
    while words and fold(words[-1]).strip(".,!") in _NAME_TAILS:  # "María Quispe porfa"
        words.pop()
    tidy = " ".join(words).strip(" ,;.!")
    for lead in _NAME_LEADS:
        if fold(tidy).startswith(lead + " "):
            tidy = tidy[len(lead) + 1 :]
            break
    name = parse_name(tidy)
    if name is None or any(fold(word) in _NOT_NAMES for word in name.split()):
        return None
    return name


def _on_doc_type(session: Session, given: _Input, rules: Rules) -> Transition:
    chosen, reading = given.chosen, given.reading
    doc_type = DocType(chosen.removeprefix("doc:")) if chosen else None
    if doc_type is None and reading is not None:
        doc_type = reading.doc_type
    if doc_type is None:
        return Transition(session, (Say(msg.bad_document_type(options(session, rules))),))
    number = reading.document(doc_type) if reading is not None else None
    draft = replace(session.draft, doc_type=doc_type, doc_number=number)
    return _advance(replace(session, draft=draft), rules)


def _on_doc_number(session: Session, given: _Input, rules: Rules) -> Transition:
    reading = given.reading
    doc_type = (reading.doc_type if reading else None) or session.draft.doc_type or DocType.DNI
    number = reading.document(doc_type) if reading is not None else None
    if number is None:
        return Transition(session, (Say(msg.bad_doc_number(doc_type)),))
    draft = replace(session.draft, doc_type=doc_type, doc_number=number)
    return _advance(replace(session, draft=draft), rules)


def _on_kind(session: Session, given: _Input, rules: Rules) -> Transition:
    reading = given.reading
    match given.chosen:
        case "kind:saldo":
            return _go(session, Step.CHOOSE_AMOUNT, rules)
        case "kind:paquete":
            return _go(session, Step.CHOOSE_PACKAGE, rules)
    if reading is not None and (reading.amount or reading.package):
        return _product(session, reading, rules)
    if reading is not None and reading.kind is not None:
        target = Step.CHOOSE_AMOUNT if reading.kind is ProductKind.CREDIT else Step.CHOOSE_PACKAGE
        return _go(session, target, rules)
    if reading is not None and reading.intent is Intent.RECHARGE:  # "recarga nomás": credit
        return _go(session, Step.CHOOSE_AMOUNT, rules)
    return _reask(session, rules)


def _product(session: Session, reading: Reading, rules: Rules) -> Transition:
    """An amount ("10", "diez soles", "S/ 15") or a package named in the text."""
    amount = reading.amount
    if reading.package and not reading.money:
        product = rules.catalogue.package(reading.package)
        if product is not None:
            return _go(session, Step.CONFIRM, rules, product=product)
    if amount is None:
        return _reask(session, rules)
    if not amount.whole or not is_custom_amount_allowed(amount.soles):
        return Transition(session, (Say(msg.bad_amount()),))
    return _go(session, Step.CONFIRM, rules, product=credit_product(amount.soles))


def _on_amount(session: Session, given: _Input, rules: Rules) -> Transition:
    chosen = given.chosen
    if chosen == _OTHER_AMOUNT:
        return _go(session, Step.ASK_AMOUNT, rules)
    if chosen is not None:
        return _go(session, Step.CONFIRM, rules, product=credit_product(int(chosen.split(":")[1])))
    if given.reading is not None and (given.reading.amount or given.reading.package):
        return _product(session, given.reading, rules)
    return _reask(session, rules)


def _on_custom_amount(session: Session, given: _Input, rules: Rules) -> Transition:
    reading = given.reading
    if reading is None or reading.amount is None:
        return Transition(session, (Say(msg.bad_amount()),))
    return _product(session, replace(reading, package=None), rules)


def _on_package(session: Session, given: _Input, rules: Rules) -> Transition:
    chosen, reading = given.chosen, given.reading
    product = rules.catalogue.package(chosen.removeprefix("pkg:")) if chosen else None
    if reading is not None and (priced := _package_priced(reading, rules)):
        product = priced  # "5", "el de 10": the price, never the position
    if product is None and reading is not None and reading.package:
        product = rules.catalogue.package(reading.package)
    if product is None and reading is not None and reading.money:
        return _product(session, reading, rules)  # "mejor una recarga de 10 soles"
    if product is None:
        return _reask(session, rules)
    return _go(session, Step.CONFIRM, rules, product=product)


def _package_priced(reading: Reading, rules: Rules) -> Product | None:
    """The one package sold at the amount typed, unless a recharge of credit is asked for."""
    amount = reading.amount
    if amount is None or not amount.whole or reading.intent is Intent.RECHARGE or reading.kind:
        return None
    priced = [p for p in rules.catalogue.packages if p.price_cents == amount.soles * 100]
    return priced[0] if len(priced) == 1 else None


def _on_confirm(session: Session, given: _Input, rules: Rules) -> Transition:
    purchase = session.draft.purchase
    reading = given.reading
    if reading is not None and reading.figure and not reading.money:
        # "no, mejor 20" is an amount in soles; "1" alone picks the first option.
        position = given.chosen is not None and given.text.strip().isdecimal()
        reading = replace(reading, figure=None, money=None if position else reading.figure)
    fixing = reading is not None and (reading.correction is not None or reading.has_data)
    match given.chosen:
        case "cancel":
            return _cancel(session)
        case "change" if not fixing:
            return _go(session, Step.CHANGE, rules)
        case "confirm" if purchase is not None and not fixing:  # "sí, 20 soles" changes first
            return _checkout(session, purchase)
    if reading is not None and (reading.correction is not None or reading.kind):
        return _correct(session, reading, rules)
    if reading is not None and reading.has_data:
        return _absorb(session, reading, rules)  # "mejor de 20", "al 987 654 322"
    return _reask(session, rules)


def _checkout(session: Session, purchase: Purchase) -> Transition:
    waiting = replace(
        session, step=Step.AWAIT_PAYMENT, payment=Payment(purchase.product.price_cents)
    )
    return Transition(waiting, (OpenCheckout(purchase),))


def _correct(session: Session, reading: Reading, rules: Rules) -> Transition:
    """Fix one field ("no, el número es …", "cambiar titular") and keep the rest."""
    if reading.kind and not (reading.amount or reading.package or reading.msisdn):
        target = Step.CHOOSE_AMOUNT if reading.kind is ProductKind.CREDIT else Step.CHOOSE_PACKAGE
        return _go(session, target, rules)  # "cambiar monto", "mejor un paquete"
    if reading.has_data:
        return _absorb(session, reading, rules)
    return _change(session, reading.correction, rules)


def _change(session: Session, field_: Field | None, rules: Rules) -> Transition:
    draft = session.draft
    match field_:
        case Field.NUMBER:
            target = Step.PICK_LINE if session.profile.lines else Step.ASK_NUMBER
            return _go(session, target, rules)
        case Field.OWNER:  # a new owner brings a new document (Ley 29733: rectification)
            cleared = replace(draft, owner_name=None, doc_type=None, doc_number=None)
            return _go(replace(session, draft=cleared), Step.ASK_NAME, rules)
        case Field.DOCUMENT:
            cleared = replace(draft, doc_type=None, doc_number=None)
            return _go(replace(session, draft=cleared), Step.ASK_DOC_TYPE, rules)
        case Field.PRODUCT:
            return _go(session, Step.CHOOSE_KIND, rules)
    return _go(session, Step.CHANGE, rules)


_CHANGES = {
    "change:number": Field.NUMBER, "change:owner": Field.OWNER,
    "change:document": Field.DOCUMENT, "change:product": Field.PRODUCT,
}  # fmt: skip


def _on_change(session: Session, given: _Input, rules: Rules) -> Transition:
    if given.chosen in _CHANGES:
        return _change(session, _CHANGES[given.chosen], rules)
    if given.reading is not None and (given.reading.correction or given.reading.has_data):
        return _correct(session, given.reading, rules)
    return _reask(session, rules)


def _on_payment(session: Session, given: _Input, rules: Rules) -> Transition:
    payment = session.payment
    event = given.event
    if payment is None:
        return _greet(session, rules, None)
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
        if session.step is Step.HANDOFF:  # a person still has the chat
            updated = replace(updated, step=Step.HANDOFF)
    if order.state is OrderState.COMPLETED and not profile.promos_asked and _idle(updated):
        return _ask_promos(updated, msg.settled(order))
    return Transition(updated, (Say(msg.settled(order)),))


def _on_erase(session: Session, given: _Input, rules: Rules) -> Transition:
    """Erase after a Sí (cancelling an open link first); a No goes back to where the chat was."""
    match given.chosen:
        case "erase:yes":
            payment = session.payment
            cancel = (CancelCheckout(payment.order_id),) if payment and payment.order_id else ()
            return Transition(Session(), (*cancel, ErasePersonalData(), Say(msg.erased())))
        case "erase:no":
            if session.payment is not None:
                back = replace(session, step=Step.AWAIT_PAYMENT)
                return Transition(back, (Say(msg.erase_kept()), *_prompt(back, rules)))
            if session.draft != Draft():  # a purchase under way: ask what it still lacks
                return _advance(session, rules, (Say(msg.erase_kept()),))
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


def _on_promos(session: Session, given: _Input, rules: Rules) -> Transition:
    # Only answers reach here: step() lapses the question on anything else.
    return _promos_set(session, given.chosen == "promos:si", rules)


def _promos_command(session: Session, event: Event, rules: Rules) -> Transition:
    """``/promos si`` or ``/promos no``; anything else explains the command."""
    words = fold(event.body if isinstance(event, Text) else "").split()
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


_HANDLERS: dict[Step, Callable[[Session, _Input, Rules], Transition]] = {
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
