"""The one place that turns personal data into something safe to log."""

from __future__ import annotations

import re

from conversations.model import ChatKey

# Seven or more digits standing alone (a phone, a DNI or CE, a card), not inside a hex order id;
# shorter runs are ports, process ids and amounts, which operators need to read.
_DIGIT_RUN = re.compile(r"(?<![0-9a-fA-F])\d{7,}(?![0-9a-fA-F])")


def mask_msisdn(msisdn: str) -> str:
    """``987654321`` -> ``9** *** 321``."""
    return f"{msisdn[:1]}** *** {msisdn[-3:]}" if len(msisdn) >= 6 else "***"


def mask_document(number: str) -> str:
    return f"****{number[-4:]}" if len(number) > 4 else "****"


def mask_chat(key: ChatKey) -> str:
    """Identify a chat in logs without its full id (a WhatsApp id is a phone number)."""
    return f"{key.channel.value}:…{key.chat_id[-4:]}"


def scrub(text: str) -> str:
    """Mask every free-standing run of seven or more digits (numbers, documents, cards)."""
    return _DIGIT_RUN.sub(lambda m: "*" * (len(m.group()) - 3) + m.group()[-3:], text)
