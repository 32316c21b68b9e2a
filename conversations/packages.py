"""Packages as the top-up provider sells them, and as operators choose to show them.

A package is one fixed amount of one of the provider's bundle or data operators: buying it sends
that amount to that operator, never credit to the airtime operator. The provider's description
gives the defaults (name, what it includes, validity); operators may rename, reorder and hide.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from conversations.catalog import MIN_CUSTOM_SOLES, soles
from conversations.model import Product, ProductKind

_VALIDITY = re.compile(
    r"[,;.\-–(]?\s*(?:vigencia|validez|validity)?:?\s*(\d{1,3})\s*(?:d[ií]as?|days?)\)?", re.I
)
_NAME_CHARS = 40


@dataclass(frozen=True)
class Offer:
    """One fixed amount of a provider's bundle or data operator, as the provider lists it."""

    operator_id: int
    operator_name: str
    face_cents: int  # the fixed amount in soles sent to the operator
    description: str

    @property
    def code(self) -> str:
        """Stable across price changes: the operator and the description name the package."""
        digest = hashlib.sha256(f"{self.operator_id}:{self.description}".encode()).hexdigest()
        return f"paq-{self.operator_id}-{digest[:8]}"


@dataclass(frozen=True)
class ListedPackage:
    """A package in the operators' catalogue: the provider's offer and the operators' choices."""

    offer: Offer
    price_cents: int
    position: int
    name: str | None = None  # the operators' name, else the provider's
    details: str | None = None  # the operators' description, else the provider's
    hidden: bool = False
    available: bool = True  # the provider still lists it

    @property
    def code(self) -> str:
        return self.offer.code

    @property
    def on_sale(self) -> bool:
        """Listed by the provider, shown by the operators, and not below a card's minimum."""
        return self.available and not self.hidden and self.price_cents >= MIN_CUSTOM_SOLES * 100

    def product(self) -> Product:
        description = self.offer.description
        return Product(
            code=self.code,
            kind=ProductKind.PACKAGE,
            name=self.name or default_name(description, self.offer.face_cents),
            price_cents=self.price_cents,
            validity_days=validity_days(description),
            details=default_details(description) if self.details is None else self.details,
            operator_id=self.offer.operator_id,
            face_cents=self.offer.face_cents,
        )


def validity_days(description: str) -> int:
    """The days a description says the package lasts ("30 días", "7 days"); 0 if it does not."""
    found = _VALIDITY.search(description)
    return int(found.group(1)) if found else 0


def default_name(description: str, face_cents: int) -> str:
    """The text before a colon ("Paquete Mensual: 20 GB…"), else "Paquete S/ 35.00"."""
    head, colon, _ = description.partition(":")
    if colon and 0 < len(head.strip()) <= _NAME_CHARS:
        return head.strip()
    return f"Paquete {soles(face_cents)}"


def default_details(description: str) -> str:
    """What the package includes: the description without its name and validity."""
    head, colon, rest = description.partition(":")
    text = rest if colon and len(head.strip()) <= _NAME_CHARS else description
    return _VALIDITY.sub("", text).strip(" ,;.-")
