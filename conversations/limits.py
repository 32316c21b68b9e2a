"""Abuse limits: how much one chat, and one recipient number, may ask of the bot.

Why in the service, not the machine: a limit needs counts from storage and the time, and the
machine stays pure. Messages per minute are counted in memory (a flood is one process's
problem, and counting it in the database would add a write per message); checkout links and
top-ups per recipient are counted from the orders, so they hold across restarts and replicas.
Past a limit nothing is created at the payment gateway.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from conversations.model import ChatKey

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Limits:
    """The configured ceilings (defaults: RELIABILITY.md S16)."""

    messages_per_minute: int = 20
    open_checkouts: int = 3
    checkouts_per_hour: int = 5
    topups_per_recipient_day: int = 3
    cents_per_recipient_day: int = 6_000


class Refusal(StrEnum):
    """Why a checkout was not opened."""

    CHAT_LINKS = "chat_links"  # too many open links, or too many links this hour
    RECIPIENT = "recipient"  # the number got too many top-ups, or too much, in 24 hours


@dataclass(frozen=True)
class CheckoutUsage:
    open: int  # links of the chat that can still be paid
    last_hour: int  # links of the chat opened in the last hour


@dataclass(frozen=True)
class RecipientUsage:
    topups: int  # orders for the number in the last 24 hours that are or may be paid
    amount_cents: int


def checkout_refusal(
    limits: Limits, *, chat: CheckoutUsage, recipient: RecipientUsage, amount_cents: int
) -> Refusal | None:
    """The limit a new checkout of ``amount_cents`` would cross, if any."""
    if chat.open >= limits.open_checkouts or chat.last_hour >= limits.checkouts_per_hour:
        return Refusal.CHAT_LINKS
    if recipient.topups >= limits.topups_per_recipient_day:
        return Refusal.RECIPIENT
    if recipient.amount_cents + amount_cents > limits.cents_per_recipient_day:
        return Refusal.RECIPIENT
    return None


class Rate(StrEnum):
    ADMIT = "admit"
    REFUSE = "refuse"  # answer politely, once
    DROP = "drop"  # already told during this flood: stay silent


@dataclass
class MessageRate:
    """A sliding one-minute window of message times per chat, kept in memory.

    Chats quiet for a minute are forgotten once a minute, so memory follows the chats of the last
    minute or two, not every chat ever seen (10,000 chats held 13.6 MB; bench/, target 4).
    """

    limit: int
    _seen: dict[ChatKey, deque[datetime]] = field(default_factory=dict)
    _told: set[ChatKey] = field(default_factory=set)
    _swept: datetime | None = None

    def admit(self, key: ChatKey, now: datetime) -> Rate:
        """Count a message; refuse once the chat sent ``limit`` in the last minute."""
        window = self._seen.setdefault(key, deque())
        while window and window[0] <= now - MINUTE:
            window.popleft()
        if len(window) >= self.limit:
            if key in self._told:
                return Rate.DROP
            self._told.add(key)
            return Rate.REFUSE
        self._told.discard(key)
        window.append(now)
        if self._swept is None or now - self._swept >= MINUTE:
            self._forget(now)
        return Rate.ADMIT

    def __len__(self) -> int:
        """How many chats are counted now."""
        return len(self._seen)

    def _forget(self, now: datetime) -> None:
        for key in [k for k, w in self._seen.items() if not w or w[-1] <= now - MINUTE]:
            del self._seen[key]
            self._told.discard(key)
        self._swept = now
