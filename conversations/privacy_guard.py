"""The gate in front of the machine and the payment gateway: floods, card numbers, link limits.

Why a separate gate: these checks need the clock and storage counts, which the pure machine must
not see, and they must run before anything about the message is stored or logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from conversations import messages as msg
from conversations.cards import has_card_number
from conversations.limits import DAY, Limits, MessageRate, Rate, Refusal, checkout_refusal
from conversations.machine import Text
from conversations.masking import mask_chat
from conversations.messages import Reply
from conversations.model import ChatKey, Purchase

if TYPE_CHECKING:
    from conversations.machine import Choice
    from conversations.ports import ConversationStore, Usage

logger = logging.getLogger(__name__)


@dataclass
class Guard:
    """Abuse limits and card-number screening for one ChatService."""

    limits: Limits = field(default_factory=Limits)
    cards_seen: int = 0  # card numbers typed into chats and dropped (an alert counter)
    refused: int = 0  # messages and checkouts refused by a limit
    rate: MessageRate = field(init=False)

    def __post_init__(self) -> None:
        self.rate = MessageRate(self.limits.messages_per_minute)

    async def screen(
        self, key: ChatKey, event: Text | Choice, store: ConversationStore, *, now: datetime
    ) -> list[Reply] | None:
        """The replies that stop this message here, or None to let the machine have it."""
        admitted = self.rate.admit(key, now)
        if admitted is not Rate.ADMIT:
            self.refused += 1
            if admitted is Rate.DROP:  # already told (and logged) during this flood
                return []
            logger.warning("message limit reached chat=%s", mask_chat(key))
            return [msg.too_many_messages()]
        if not has_card_number(event.body if isinstance(event, Text) else event.option_id):
            return None
        self.cards_seen += 1
        logger.warning("ALERT card number typed in chat=%s: dropped unread", mask_chat(key))
        payment = (await store.load(key)).payment
        return [msg.card_in_chat(payment.url if payment else None)]

    async def refusal(
        self, key: ChatKey, purchase: Purchase, usage: Usage, now: datetime
    ) -> Refusal | None:
        """The limit a checkout for ``purchase`` would cross, if any."""
        refusal = checkout_refusal(
            self.limits,
            chat=await usage.checkouts(key, now=now),
            recipient=await usage.recipient(purchase.line.msisdn, since=now - DAY),
            amount_cents=purchase.product.price_cents,
        )
        self.refused += refusal is not None
        return refusal
