"""The one place that turns personal data into something safe to log."""

from __future__ import annotations

import re

from conversations.model import ChatKey

# Seven or more digits standing alone (a phone, a DNI or CE, a card), not inside a hex order id;
# shorter runs are ports, process ids and amounts, which operators need to read.
_DIGIT_RUN = re.compile(r"(?<![0-9a-fA-F])\d{7,}(?![0-9a-fA-F])")
# The same numbers as people and the bot write them: groups of three or four digits joined by one
# space or dash ("987 654 321", "4242-4242-4242-4242"). Dates and times break the chain with
# their two-digit groups, so a log line's timestamp stays whole.
_GROUPED = re.compile(r"(?<![0-9a-fA-F])\d{3,4}(?:[ -]\d{3,4})+(?![0-9a-fA-F])")


def mask_msisdn(msisdn: str) -> str:
    """``987654321`` -> ``9** *** 321``."""
    return f"{msisdn[:1]}** *** {msisdn[-3:]}" if len(msisdn) >= 6 else "***"


def mask_document(number: str) -> str:
    return f"****{number[-4:]}" if len(number) > 4 else "****"


def mask_chat(key: ChatKey) -> str:
    """Identify a chat in logs without its full id (a WhatsApp id is a phone number)."""
    return f"{key.channel.value}:…{key.chat_id[-4:]}"


def scrub(text: str) -> str:
    """Mask every free-standing number of seven or more digits (phones, documents, cards),
    written in one run or in groups; the last three digits stay, for an operator to match."""
    return _DIGIT_RUN.sub(_masked, _GROUPED.sub(_masked, text))


def _masked(match: re.Match[str]) -> str:
    found = match.group()
    digits = sum(c.isdigit() for c in found)
    if digits < 7:
        return found
    shown, hide = [], digits - 3
    for char in found:
        masking = char.isdigit() and hide > 0
        hide -= masking
        shown.append("*" if masking else char)
    return "".join(shown)
