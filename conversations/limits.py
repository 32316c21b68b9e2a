"""Abuse limits: how much one chat, and one recipient number, may ask of the bot.

Why in the service, not the machine: a limit needs counts from storage and the time, and the
machine stays pure. Messages per minute are counted in memory (a flood is one process's
problem, and counting it in the database would add a write per message); checkout links and
top-ups per recipient are counted from the orders, so they hold across restarts and replicas.
Past a limit nothing is created at the payment gateway.

A number's daily ceiling counts what was paid, never open links: anyone can open a link for any
number, so counting links would let one chat block another's top-ups without paying. What keeps
links from piling up beyond the ceiling is that a number has one payable link at a time: a new
one expires the older at the gateway (the service does it), so what can still be paid is at most
the ceiling's remainder, checked when the new link opens.
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
    """The configured ceilings: the number's let any offered amount (S/ 3–200) through."""

    messages_per_minute: int = 20
    open_checkouts: int = 3
    checkouts_per_hour: int = 5
    topups_per_recipient_day: int = 5
    cents_per_recipient_day: int = 30_000


class Rule(StrEnum):
    """Which ceiling a checkout would cross."""

    CHAT_OPEN = "chat_open"  # links of one chat payable at once
    CHAT_HOURLY = "chat_hourly"  # links one chat opened in the last hour
    RECIPIENT_TOPUPS = "recipient_topups"  # paid top-ups of one number in 24 hours
    RECIPIENT_AMOUNT = "recipient_amount"  # céntimos paid for one number in 24 hours


@dataclass(frozen=True)
class Refusal:
    """Why a checkout was not opened, with the figures the customer is told."""

    rule: Rule
    ceiling: int  # links, top-ups or céntimos, as the rule counts
    left: int = 0  # what the rule still allows today (céntimos, for the amount)


@dataclass(frozen=True)
class CheckoutUsage:
    open: int  # links of the chat that can still be paid
    last_hour: int  # links of the chat opened in the last hour


@dataclass(frozen=True)
class RecipientUsage:
    topups: int  # paid orders for the number in the last 24 hours (refunded ones excepted)
    amount_cents: int


def checkout_refusal(
    limits: Limits, *, chat: CheckoutUsage, recipient: RecipientUsage, amount_cents: int
) -> Refusal | None:
    """The limit a new checkout of ``amount_cents`` would cross, if any."""
    if chat.open >= limits.open_checkouts:
        return Refusal(Rule.CHAT_OPEN, limits.open_checkouts)
    if chat.last_hour >= limits.checkouts_per_hour:
        return Refusal(Rule.CHAT_HOURLY, limits.checkouts_per_hour)
    if recipient.topups >= limits.topups_per_recipient_day:
        return Refusal(Rule.RECIPIENT_TOPUPS, limits.topups_per_recipient_day)
    left = max(limits.cents_per_recipient_day - recipient.amount_cents, 0)
    if amount_cents > left:
        return Refusal(Rule.RECIPIENT_AMOUNT, limits.cents_per_recipient_day, left)
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
