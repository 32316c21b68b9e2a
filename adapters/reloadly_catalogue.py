"""Reading Reloadly's operator list (``GET /operators/countries/PE?includeBundles=true&
includeData=true``) into the packages the bot can sell.

Reloadly lists bundles and data plans as operators of their own (``bundle`` / ``data`` true),
with FIXED denominations: ``fixedAmounts`` in our account's currency, ``localFixedAmounts`` in
soles, and a description per amount in ``localFixedAmountsDescriptions`` (or, keyed by the
account's amounts, ``fixedAmountsDescriptions``). Only Claro's FIXED bundle and data operators
with local amounts in PEN become offers: a package is always bought in soles, at its fixed amount.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from conversations.packages import Offer

COUNTRY = "PE"


def claro_offers(operators: Iterable[Mapping[str, Any]]) -> list[Offer]:
    """Every fixed amount of Claro's bundle and data operators, in the provider's order."""
    offers: list[Offer] = []
    for operator in operators:
        if _sells_packages(operator):
            offers += _offers_of(operator)
    return offers


def _sells_packages(operator: Mapping[str, Any]) -> bool:
    return (
        "claro" in str(operator.get("name", "")).lower()
        and bool(operator.get("bundle") or operator.get("data"))
        and operator.get("denominationType") == "FIXED"
        and operator.get("destinationCurrencyCode") == "PEN"
        and bool(operator.get("localFixedAmounts"))
    )


def _offers_of(operator: Mapping[str, Any]) -> list[Offer]:
    local = [_cents(amount) for amount in operator["localFixedAmounts"]]
    sender = [_cents(amount) for amount in operator.get("fixedAmounts") or []]
    by_local = _descriptions(operator.get("localFixedAmountsDescriptions"))
    by_sender = _descriptions(operator.get("fixedAmountsDescriptions"))
    offers = []
    for index, cents in enumerate(local):
        if cents is None or cents <= 0:
            continue
        paired = sender[index] if index < len(sender) else None
        description = by_local.get(cents) or by_sender.get(paired) or ""
        offers.append(Offer(int(operator["id"]), str(operator["name"]), cents, description))
    return offers


def _descriptions(raw: object) -> dict[int | None, str]:
    """Descriptions keyed by amount in céntimos (Reloadly sends a map of amount to text)."""
    if not isinstance(raw, Mapping):
        return {}
    return {_cents(amount): str(text).strip() for amount, text in raw.items()}


def _cents(amount: object) -> int | None:
    try:
        return int(Decimal(str(amount)).scaleb(2).to_integral_value())
    except InvalidOperation:
        return None
