"""Free text -> what it carries: a line, an amount, a document, a package, yes/no, an intent.

Pure and step-blind: ``machine.py`` decides what each slot means where the chat stands. Libraries
do the reading where they can: phonenumbers finds a line inside a sentence, text2num turns number
words into figures ("diez soles" -> "10 soles") and rapidfuzz forgives typos in keywords and in
package names ("recrga", "pakete mensul"). Words are compared folded (no accents, lower case);
names keep the text exactly as typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import phonenumbers
from rapidfuzz import fuzz, process
from text_to_num import alpha2digit

from conversations.catalog import fold, parse_document
from conversations.model import DocType, Product, ProductKind


class Intent(StrEnum):
    """What the customer asks for, beside any data; listed from the strongest."""

    CANCEL = "cancel"
    AGENT = "agent"  # a person, please
    COMPLAINT = "complaint"  # a reclamo: a person, and the Libro de Reclamaciones
    HELP = "help"
    BACK = "back"
    RESTART = "restart"  # menú, inicio: also takes a chat back from a person to the bot
    RECHARGE = "recharge"
    THANKS = "thanks"
    GREETING = "greeting"
    ACK = "ack"  # ok, listo, 👍: nothing to do


class Field(StrEnum):
    """What a correction ("no, el número es…", "cambiar titular") is about."""

    NUMBER = "number"
    OWNER = "owner"
    DOCUMENT = "document"
    PRODUCT = "product"


_INTENT_WORDS: dict[str, Intent] = {
    **dict.fromkeys(
        ("cancelar", "cancela", "cancelalo", "cancel", "anular", "anula", "olvidalo", "dejalo",
         "salir"),
        Intent.CANCEL,
    ),
    **dict.fromkeys(
        ("asesor", "asesora", "humano", "persona", "operador", "operadora", "agente", "ejecutivo",
         "ejecutiva", "representante"),
        Intent.AGENT,
    ),
    **dict.fromkeys(
        ("reclamo", "reclamar", "queja", "quejarme", "reclamacion", "reclamaciones", "denuncia"),
        Intent.COMPLAINT,
    ),
    **dict.fromkeys(("ayuda", "ayudame", "help", "auxilio"), Intent.HELP),
    **dict.fromkeys(("atras", "volver", "regresar", "anterior", "retroceder"), Intent.BACK),
    **dict.fromkeys(("menu", "inicio", "empezar", "comenzar", "start", "bot"), Intent.RESTART),
    **dict.fromkeys(
        ("recargar", "recarga", "recargame", "recargue", "recargas", "recargarme", "recargo"),
        Intent.RECHARGE,
    ),
    **dict.fromkeys(
        ("gracias", "grax", "gracia", "graciass", "thanks", "thx", "agradezco", "agradecido",
         "agradecida"),
        Intent.THANKS,
    ),
    **dict.fromkeys(
        ("hola", "holi", "holis", "ola", "buenas", "buenos", "buen", "hey", "alo", "saludos",
         "hello", "hi"),
        Intent.GREETING,
    ),
    **dict.fromkeys(
        ("ok", "okey", "oki", "okay", "oka", "listo", "vale", "perfecto", "genial", "chevere",
         "bacan", "excelente", "bien", "entendido", "okis", "espera", "esperame", "momento",
         "momentito", "chau", "chao", "adios", "bye"),
        Intent.ACK,
    ),
}  # fmt: skip
_EMOJI_INTENTS = {"👍": Intent.ACK, "👌": Intent.ACK, "🙏": Intent.THANKS, "👋": Intent.GREETING}
_YES = frozenset(
    ("si", "sii", "siii", "sip", "simon", "ya", "dale", "acepto", "aceptar", "confirmo",
     "confirmar", "correcto", "claro", "yes", "afirmativo", "ok", "okey", "oki", "okay", "oka",
     "listo", "vale", "perfecto", "bueno", "va", "sale", "okis", "okas", "sipi", "sep", "see")
)  # fmt: skip
_NO = frozenset(("no", "nop", "nope", "nel", "negativo", "nada", "tampoco"))
# Words that carry no slot: courtesy, fillers and Peruvian tags ("sí pe", "porfa", "xfa").
FILLERS = frozenset(
    ("por", "favor", "porfa", "porfis", "porfavor", "xfa", "xfavor", "plis", "pls", "please",
     "pe", "pues", "pue", "oe", "oye", "causa", "amigo", "amiga", "senor", "senora", "senorita",
     "joven", "quiero", "quisiera", "deseo", "necesito", "puedes", "puede", "podrias", "me", "te",
     "un", "una", "el", "la", "los", "las", "al", "a", "de", "del", "para", "con", "y", "mi",
     "es", "hacer", "hazme", "dame", "mandame", "manda", "ahora", "rapido", "nomas", "noma",
     "numero", "nro", "n", "cel", "celular", "linea", "movil", "hablar", "que", "mas")
)  # fmt: skip
_PLEASE = frozenset(
    ("por", "favor", "porfa", "porfis", "porfavor", "xfa", "xfavor", "plis", "pls", "please")
)
_DOC_WORDS: dict[str, DocType] = {
    **dict.fromkeys(("dni", "d.n.i", "d.n.i."), DocType.DNI),
    **dict.fromkeys(("ce", "carne", "carnet", "extranjeria", "c.e", "c.e."), DocType.CE),
    **dict.fromkeys(("pasaporte", "passport", "pas"), DocType.PASSPORT),
}
_KIND_WORDS: dict[str, ProductKind] = {
    **dict.fromkeys(("saldo", "credito", "minutos", "monto"), ProductKind.CREDIT),
    **dict.fromkeys(
        ("paquete", "paquetes", "pack", "plan", "megas", "datos", "pakete", "paketes", "paqete"),
        ProductKind.PACKAGE,
    ),
}
_FIELD_WORDS: dict[str, Field] = {
    **dict.fromkeys(("numero", "linea", "celular", "cel"), Field.NUMBER),
    **dict.fromkeys(("titular", "nombre", "dueno", "duena"), Field.OWNER),
    **dict.fromkeys(("documento", "dni", "doc", "carne", "carnet", "pasaporte"), Field.DOCUMENT),
    **dict.fromkeys(("monto", "paquete", "producto", "precio"), Field.PRODUCT),
}
_CHANGE_WORDS = frozenset(
    ("cambiar", "cambia", "cambio", "corregir", "corrige", "editar", "modificar")
)
# Soles: "S/ 20", "s/.20", "20 soles", "20 lucas" (Peruvian slang), "20.50" (céntimos).
_MONEY_RE = re.compile(
    r"(?:s/\.?|soles|sol)\s*(\d{1,4}(?:[.,]\d{1,2})?)\b"
    r"|\b(\d{1,4}(?:[.,]\d{1,2})?)\s*(?:soles|sol|lucas|luca|mangos|cocos|pen)\b"
)
_MONEY_WORD = re.compile(r"\b(?:soles|sol|lucas|luca)\b")
_FIGURE_RE = re.compile(r"(?<![\d.,-])(\d{1,4})(?:[.,](\d{1,2}))?(?![\d.,]*\d)")
_TOKEN_RE = re.compile(r"[a-z0-9ñ./]+|[^\sa-z0-9]", re.IGNORECASE)
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_FUZZY_MIN = 85
_T = TypeVar("_T")
_MAX_READ_CHARS = 200


@dataclass(frozen=True)
class Amount:
    soles: int
    whole: bool = True  # False when céntimos were typed (S/ 10.50)


@dataclass(frozen=True)
class Reading:
    """Everything one message carries; None where it carries nothing of that kind."""

    intent: Intent | None = None
    answer: bool | None = None  # sí / no
    msisdn: str | None = None  # a Peruvian mobile
    other_phone: bool = False  # a number that is a phone but not a Peruvian mobile
    garbled_mobile: bool = False  # that phone is a mobile with a digit too many or too few
    money: Amount | None = None  # an amount marked as money (S/, soles, lucas)
    figure: Amount | None = None  # a bare figure: soles where an amount is asked
    doc_type: DocType | None = None
    doc_text: str = ""  # the text with the line and the document words taken out
    kind: ProductKind | None = None
    package: str | None = None  # a package code
    correction: Field | None = None
    words: tuple[str, ...] = ()  # folded words, fillers included

    @property
    def amount(self) -> Amount | None:
        return self.money or self.figure

    @property
    def chatter(self) -> bool:
        """Small talk only (gracias, ok, hola, 👍): nothing else to act on."""
        return self.intent in (Intent.THANKS, Intent.GREETING, Intent.ACK) and not self.has_data

    @property
    def has_data(self) -> bool:
        return bool(
            self.msisdn or self.amount or self.package or self.doc_type or self.kind
            or self.other_phone
        )  # fmt: skip

    def document(self, doc_type: DocType) -> str | None:
        """The document number carried, read as ``doc_type``."""
        return parse_document(doc_type, self.doc_text) if self.doc_text else None


def read(text: str, packages: Iterable[Product] = ()) -> Reading:
    """Read one message. Never raises: what cannot be read is left out."""
    text = text[:_MAX_READ_CHARS]
    if _BIDI_CONTROLS.intersection(text):
        return Reading()  # text that displays other than it reads: take nothing from it
    folded = _DOC_GLUED.sub(r"\1 ", fold(text))  # "DNI45678912"
    msisdn, other_phone, rest = _phones(folded)
    spelled = _spelled(rest)
    if msisdn is None and not other_phone and spelled != rest:  # "nueve ocho siete …"
        msisdn, other_phone, spelled = _phones(spelled)
    garbled = other_phone and not msisdn and bool(_GARBLED_MOBILE.search(rest))
    words = tuple(_TOKEN_RE.findall(spelled))
    doc_type, doc_text = _document(words)
    money, figure = _amounts(spelled, doc_type is not None)
    return Reading(
        intent=_intent(words),
        answer=_answer(words),
        msisdn=msisdn,
        other_phone=other_phone,
        garbled_mobile=garbled,
        money=money,
        figure=figure,
        doc_type=doc_type,
        doc_text=doc_text,
        kind=_first(words, _KIND_WORDS),
        package=_package(words, tuple(packages)),
        correction=_correction(words, msisdn is not None),
        words=words,
    )


def split_document(text: str) -> tuple[str, str]:
    """ "Rosa Huamán DNI 45678912" -> ("Rosa Huamán ", "DNI 45678912"): what precedes a document."""
    found = _DOC_START.search(text)
    return (text[: found.start()], text[found.start() :]) if found else (text, "")


_DOC_START = re.compile(r"\b(?:d\.?n\.?i|c\.?e|carn[eé]t?|pasaporte|passport)\b|\d", re.IGNORECASE)


_LINK = frozenset(("link", "enlace", "linck", "pagina"))  # "no me llegó el link": sent again
_DOC_GLUED = re.compile(r"\b(dni|ce|carnet|carne|pasaporte)(?=\d)")
_GARBLED_MOBILE = re.compile(r"\b9\d{2}[\s.-]?\d{3}[\s.-]?\d{2,3}\b")


def _phones(folded: str) -> tuple[str | None, bool, str]:
    """The Peruvian mobile in the text, whether another phone was there, and the rest of it."""
    msisdn, other, rest = None, False, folded
    leniency = phonenumbers.Leniency.POSSIBLE
    for match in phonenumbers.PhoneNumberMatcher(folded, "PE", leniency=leniency):
        national = str(match.number.national_number)
        mobile = match.number.country_code == 51 and re.fullmatch(r"9\d{8}", national)
        if not mobile and not match.raw_string.lstrip().startswith(("0", "+", "(")):
            continue  # a bare run of digits is a DNI or a CE far more often than a landline
        if mobile and phonenumbers.is_valid_number(match.number):
            msisdn = msisdn or national
        else:
            other = True
        rest = rest.replace(match.raw_string, " ")
    if msisdn is None and not other and _GARBLED_MOBILE.search(rest):
        other = True  # nine-ish digits starting with 9 that are no valid line
    return msisdn, other, rest


def _spelled(text: str, threshold: int = 3) -> str:
    """Number words as figures ("diez soles" -> "10 soles"); text2num leaves the rest alone,
    and by default "uno" and "dos" too ("una recarga" is no amount)."""
    try:
        return str(alpha2digit(text, "es", threshold=threshold))
    except (ValueError, IndexError):  # a defensive guard: the library parses free text
        return text


def _document(words: tuple[str, ...]) -> tuple[DocType | None, str]:
    doc_type = _first(words, _DOC_WORDS)
    named = next((i for i, w in enumerate(words) if w in _DOC_WORDS), None)
    if named is not None and (after := _document_text(words[named + 1 :])):
        return doc_type, after  # "987654321 María Quispe DNI 45678912": what follows "DNI"
    return doc_type, _document_text(words)


def _document_text(words: tuple[str, ...]) -> str:
    keep = [
        w for w in words
        if w not in _DOC_WORDS and w not in FILLERS and w not in _NO and w not in _YES
        and _fuzzy(w) is None
        and w not in ("de", "identidad", "documento", "extranjero", "extranjera", "mi", "n°", "°")
    ]  # fmt: skip
    # "45.678.912": dots group the digits of a document as they do those of a phone number.
    digits = (w.replace(".", "") if re.fullmatch(r"\d[\d.]*", w) else w for w in keep)
    return "".join(w for w in digits if re.fullmatch(r"[a-z0-9]+", w))


def _amounts(spelled: str, has_doc: bool) -> tuple[Amount | None, Amount | None]:
    money = _money(spelled)
    if money is None and _MONEY_WORD.search(spelled):  # "dos soles": small numbers spelled too
        money = _money(_spelled(spelled, threshold=0))
    if money or has_doc:
        return money, None
    figures = _FIGURE_RE.findall(spelled)
    if len(figures) != 1:  # several loose figures are a document or a number, not an amount
        return None, None
    whole, cents = figures[0]
    return None, Amount(int(whole), whole=not cents or int(cents) == 0)


def _money(spelled: str) -> Amount | None:
    return next((_amount(m.group(1) or m.group(2)) for m in _MONEY_RE.finditer(spelled)), None)


def _amount(figure: str) -> Amount:
    whole, _, cents = figure.replace(",", ".").partition(".")
    return Amount(int(whole), whole=not cents or int(cents) == 0)


def _intent(words: tuple[str, ...]) -> Intent | None:
    if words and all(w in _PLEASE for w in words):
        return Intent.ACK  # a lone "porfa" nudges: the pending question again
    found = {i for w in words if (i := _EMOJI_INTENTS.get(w) or _INTENT_WORDS.get(w) or _fuzzy(w))}
    said = " ".join(words)
    if "ya no quiero" in said or "no quiero nada" in said:
        return Intent.CANCEL
    if "no" in words and {"llego", "llega", "llegado"} & set(words) and not _LINK & set(words):
        return Intent.COMPLAINT  # "no me llegó la recarga": a person looks into it
    if "no" in words and found <= {Intent.THANKS}:
        return None  # "no gracias" declines, it does not thank
    return min(found, key=list(Intent).index) if found else None


def _fuzzy(word: str) -> Intent | None:
    """A keyword typed with a typo ("recrga", "asesr"); short words must match exactly."""
    if len(word) < 5 or not word.isalpha():
        return None
    best = process.extractOne(word, _LONG_WORDS, scorer=fuzz.ratio, score_cutoff=_FUZZY_MIN)
    return _INTENT_WORDS[best[0]] if best else None


_LONG_WORDS = tuple(w for w in _INTENT_WORDS if len(w) >= 5)


def _answer(words: tuple[str, ...]) -> bool | None:
    meaningful = [w for w in words if w not in FILLERS or w in _YES]
    if any(w in _NO for w in meaningful):
        return False
    if meaningful and any(w in _YES or w == "👍" for w in meaningful):
        return True
    if "de una" in " ".join(words):  # Peruvian "right away": yes
        return True
    return None


def _first(words: tuple[str, ...], table: dict[str, _T]) -> _T | None:
    for word in words:
        if word in table:
            return table[word]
    for word in words:  # "sldo", "pasaprte", "extrangeria"
        if len(word) >= 4 and word.isalpha():
            best = process.extractOne(
                word, tuple(table), scorer=fuzz.ratio, score_cutoff=_FUZZY_MIN
            )
            if best:
                return table[best[0]]
    return None


def _package(words: tuple[str, ...], packages: tuple[Product, ...]) -> str | None:
    """The package named in the text ("Paquete Redes", "el de redes", "pakete mensul")."""
    said = [w for w in words if w not in FILLERS and w.isalnum() and len(w) >= 4]
    said = [w for w in said if w not in _KIND_WORDS and fuzz.ratio(w, "paquete") < 75]
    if not said or not packages:
        return None
    scores = sorted(((_likeness(said, p), p.code) for p in packages), reverse=True)
    best, code = scores[0]
    if best < _FUZZY_MIN or (len(scores) > 1 and best - scores[1][0] < 10):
        return None  # nothing alike, or two packages read alike: let the menu ask
    return code


def _likeness(said: list[str], package: Product) -> float:
    """How well the words said match the package's own words (its kind word left out)."""
    own = [w for w in fold(package.name).split() if w not in _KIND_WORDS and w.isalnum()]
    return max((fuzz.ratio(s, w) for s in said for w in own), default=0.0)


def _correction(words: tuple[str, ...], has_number: bool) -> Field | None:
    """ "cambiar titular", "corregir documento", "no, el número es …": the field to correct."""
    changing = any(w in _CHANGE_WORDS for w in words) or (words[:1] == ("no",) and len(words) > 1)
    if not changing:
        return None
    field = next((_FIELD_WORDS[w] for w in words if w in _FIELD_WORDS), None)
    return field or (Field.NUMBER if has_number else None)
