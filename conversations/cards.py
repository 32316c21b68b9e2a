"""Card numbers typed into the chat: spotted before anything is stored or logged, then dropped.

Why: the bot never takes card data (the hosted payment page does), so a card number in a chat
message is a mistake that must not end up in the database, the logs or a reply (PCI DSS).
A candidate is a run of 13-19 digits, contiguous or in groups of four (or Amex's 4-6-5)
separated by spaces or dashes, that passes the Luhn check.
"""

from __future__ import annotations

import re

from stdnum import luhn

_CANDIDATE = re.compile(
    r"(?<![0-9])(?:[0-9]{13,19}"
    r"|[0-9]{4}(?:[ -][0-9]{4}){2}[ -][0-9]{1,7}"
    r"|[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5})(?![0-9])"
)


def has_card_number(text: str) -> bool:
    """True if ``text`` holds a Luhn-valid 13-19 digit run (spaces or dashes allowed)."""
    for match in _CANDIDATE.finditer(text[:10_000]):
        digits = re.sub(r"[^0-9]", "", match.group())
        if 13 <= len(digits) <= 19 and luhn.is_valid(digits):
            return True
    return False
