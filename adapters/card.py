"""Pure checks of what a person types into a card form: number, brand, expiry and CVC.

Used by the sandbox checkout page to behave like a real hosted page. Nothing here stores,
logs or returns card data beyond the brand; every function is pure and I/O-free.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum

_SEPARATORS = re.compile(r"[\s-]+")
_EXPIRY = re.compile(r"(0[1-9]|1[0-2])/([0-9]{2})")
_CVC = re.compile(r"[0-9]{3}")
MIN_DIGITS, MAX_DIGITS = 13, 19


class Brand(StrEnum):
    VISA = "visa"
    MASTERCARD = "mastercard"
    OTHER = "other"


def card_digits(number: str) -> str | None:
    """Return the digits of a card number typed with spaces or dashes, or None if it is not one."""
    digits = _SEPARATORS.sub("", number)
    if not digits.isascii() or not digits.isdigit():
        return None
    return digits if MIN_DIGITS <= len(digits) <= MAX_DIGITS else None


def brand_of(digits: str) -> Brand:
    """Tell Visa (4…) and Mastercard (51–55, 2221–2720) apart from every other network."""
    if digits.startswith("4"):
        return Brand.VISA
    if 51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720:
        return Brand.MASTERCARD
    return Brand.OTHER


def expiry_valid(text: str, *, today: date) -> bool:
    """Accept ``MM/AA`` for this month or later (a card works until the end of its month)."""
    match = _EXPIRY.fullmatch("".join(text.split()))
    if match is None:
        return False
    month, year = int(match.group(1)), 2000 + int(match.group(2))
    return (year, month) >= (today.year, today.month)


def cvc_valid(text: str) -> bool:
    """Accept the three digits printed on the back of a Visa or Mastercard."""
    return _CVC.fullmatch(text.strip()) is not None
