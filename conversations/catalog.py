"""Pure domain helpers: parsing what customers type, prices, and the product catalogue."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from stdnum.exceptions import ValidationError
from stdnum.pe import cui

from conversations.model import DocType, Product, ProductKind

PRESET_SOLES = (3, 5, 7, 10, 15, 20, 50)
MIN_CUSTOM_SOLES = 3
MAX_CUSTOM_SOLES = 200
# Claro: recharges of S/ 3-59 are valid 30 days, from S/ 60 on 60 days.
LONG_VALIDITY_FROM_SOLES = 60

_NAME_RE = re.compile(r"^[^\W\d_]+(?:(?:\. ?|[ '-])[^\W\d_]+)*\.?$")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_CE_RE = re.compile(r"^[0-9]{9,12}$")
_PASSPORT_RE = re.compile(r"^(?=.*[0-9])[A-Z0-9]{6,12}$")  # real passports carry digits
_MAX_PARSE_CHARS = 64


def soles(cents: int) -> str:
    """Format céntimos as the customer reads them: ``S/ 10.00``."""
    return f"S/ {cents // 100}.{cents % 100:02d}"


def display_msisdn(msisdn: str) -> str:
    return f"{msisdn[:3]} {msisdn[3:6]} {msisdn[6:]}"


def parse_msisdn(text: str) -> str | None:
    """Return the 9 national digits of a Peruvian mobile number, or None."""
    if len(text) > _MAX_PARSE_CHARS or not re.fullmatch(r"[\d\s()+.-]+", text.strip()):
        return None
    try:
        number = phonenumbers.parse(text, "PE")
    except phonenumbers.NumberParseException:
        return None
    national = str(number.national_number)
    if number.country_code != 51 or not re.fullmatch(r"9\d{8}", national):
        return None
    return national if phonenumbers.is_valid_number(number) else None


def parse_name(text: str) -> str | None:
    """Return the owner's name tidied (single spaces), or None when it is not a plausible name."""
    name = " ".join(unicodedata.normalize("NFC", text).translate(_APOSTROPHES).split())
    if not 2 <= len(name) <= 60 or not _NAME_RE.match(name):
        return None
    return name if sum(ch.isalpha() for ch in name) >= 2 else None


def parse_document(doc_type: DocType, text: str) -> str | None:
    """Return the document number normalised, or None when it is not valid for its type."""
    if len(text) > _MAX_PARSE_CHARS:
        return None
    # NFKC turns full-width digits and letters (typed on some phones) into plain ASCII.
    compact = re.sub(r"[\s.-]", "", unicodedata.normalize("NFKC", text)).upper()
    if doc_type is DocType.DNI:
        return _parse_dni(compact)
    pattern = _CE_RE if doc_type is DocType.CE else _PASSPORT_RE
    return compact if pattern.match(compact) and len(set(compact)) > 1 else None


def _parse_dni(compact: str) -> str | None:
    try:
        valid = cui.validate(compact)
    except ValidationError:
        return None
    digits = valid[:8]
    return None if len(set(digits)) == 1 else digits


def credit_product(amount_soles: int) -> Product:
    validity = 60 if amount_soles >= LONG_VALIDITY_FROM_SOLES else 30
    return Product(
        code=f"saldo-{amount_soles}",
        kind=ProductKind.CREDIT,
        name=f"Recarga de saldo {soles(amount_soles * 100)}",
        price_cents=amount_soles * 100,
        validity_days=validity,
    )


def is_custom_amount_allowed(amount_soles: int) -> bool:
    return MIN_CUSTOM_SOLES <= amount_soles <= MAX_CUSTOM_SOLES


def fold(text: str) -> str:
    """Lower-case and strip accents, so 'Sí', 'si' and 'SI' compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.strip().lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True)
class Catalogue:
    """The packages on sale, in menu order (built from the provider's by conversations.packages)."""

    packages: tuple[Product, ...]

    def package(self, code: str) -> Product | None:
        return next((p for p in self.packages if p.code == code), None)
