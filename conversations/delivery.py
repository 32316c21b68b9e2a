"""Whether and how a reply may reach a customer on a channel with a service window (WhatsApp).

WhatsApp allows free-form messages only within 24 hours of the customer's last message; after
that only an approved template may be sent (Twilio 63016), or the message waits until the customer
writes again. Customers who said BAJA / STOP get no promos or other non-essential messages; what
answers their own messages and what they must know about their money (order notices) still goes.
A customer who blocked us at Twilio (21610) is unreachable: nothing is sent until they write.
The rule lives here, pure, so every messenger applies the same one and tests can read it.

Every message that matters (replies, order notices) goes through the outbox: put in with the
state change that produced it, sent at once by the ``Courier``, and settled by ``fate``, the one
rule for both channels: retried with backoff, kept until the customer writes, or refused for good.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from conversations.errors import DeliveryFailed, NotDeliverableNow
from conversations.masking import mask_chat
from conversations.messages import Reply
from conversations.model import ChatKey
from conversations.ports import Claim, Contact, Messenger, Outbox, Outgoing

logger = logging.getLogger(__name__)

SERVICE_WINDOW = timedelta(hours=24)


class Route(StrEnum):
    FREE_FORM = "free_form"  # a normal message: text, numbered options, link
    TEMPLATE = "template"  # the approved notification template, outside the window
    LATER = "later"  # keep it: it can only go once the customer writes again
    DROP = "drop"  # never send it (a promo to an opted-out customer)


def in_window(contact: Contact, now: datetime, window: timedelta = SERVICE_WINDOW) -> bool:
    """True while free-form messages may be sent: the customer wrote less than 24 hours ago."""
    last = contact.last_inbound_at
    return last is not None and now - last < window


def route(contact: Contact, reply: Reply, *, now: datetime, has_template: bool) -> Route:
    """Decide how ``reply`` may reach the customer now."""
    if not reply.essential and (contact.opted_out or contact.unreachable):
        return Route.DROP
    if contact.unreachable:
        return Route.LATER  # blocked (Twilio 21610): nothing goes until they write again
    if in_window(contact, now):
        return Route.FREE_FORM
    return window_closed(reply, has_template=has_template)


def window_closed(reply: Reply, *, has_template: bool) -> Route:
    """How ``reply`` may go once the window is closed (also when Twilio says so: 63016)."""
    if not reply.essential:
        return Route.DROP  # promos outside the window would need their own opt-in template
    return Route.TEMPLATE if has_template else Route.LATER


# ---------------------------------------------------------------- the outbox's one rule


class Throttled(DeliveryFailed):
    """The vendor asked us to slow down (Telegram 429, Twilio 429 / 20429)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Refused(DeliveryFailed):
    """The vendor refused the message itself (a 400): sent again as it is, it would fail again."""


class Fate(StrEnum):
    RETRY = "retry"  # the vendor or the network failed: again, with backoff from one second
    WAIT = "wait"  # the customer cannot be reached now: again as soon as they write
    GIVE_UP = "give_up"  # the message itself is refused: kept with the reason, logged, not sent


def fate(error: Exception) -> Fate:
    """What becomes of a message whose send raised ``error``, on every channel.

    | raised                            | for example                                | fate    |
    |-----------------------------------|--------------------------------------------|---------|
    | NotDeliverableNow                 | WhatsApp window closed and no template,    | WAIT    |
    |                                   | Telegram 403 blocked, Twilio 21610 STOP    |         |
    | Refused                           | Telegram 400, Twilio 4xx (bad content)     | GIVE_UP |
    | DeliveryFailed, Throttled         | 5xx, 429 (retry_after), timeouts, network  | RETRY   |

    A timeout may hide a message that did arrive: it is sent again (at most once per id as far as
    the vendor lets us know). Anything else is a bug and propagates; the message stays due.
    """
    if isinstance(error, NotDeliverableNow):
        return Fate.WAIT
    if isinstance(error, Refused):
        return Fate.GIVE_UP
    if isinstance(error, DeliveryFailed):
        return Fate.RETRY
    raise error


@dataclass(frozen=True)
class Backoff:
    first: timedelta = timedelta(seconds=1)
    longest: timedelta = timedelta(minutes=5)

    def delay(self, attempts: int, error: Exception) -> timedelta:
        """Wait before attempt ``attempts + 1``: the vendor's retry_after, else 1 s, 2 s, 4 s…"""
        asked: float | None = error.retry_after if isinstance(error, Throttled) else None
        if asked is not None:
            return timedelta(seconds=asked)
        return min(self.first * (1 << min(attempts, 20)), self.longest)


class Send(Protocol):
    async def __call__(
        self, key: ChatKey, reply: Reply, *, answering: bool = False, contact: Contact | None = None
    ) -> str | None:
        """Send the reply as ``Messenger.send`` does."""


@dataclass
class Courier:
    """Send a chat's outbox, oldest first, and settle each message by ``fate``.

    The caller holds the chat (its lock), so a chat's messages go one at a time and in order: a
    message to retry stops the ones after it. ``later(key, delay)`` asks for another pass over
    the chat after the delay; the worker's ``resume`` catches what a restart lost.
    """

    outbox: Outbox
    messenger: Messenger
    clock: Callable[[], datetime]
    later: Callable[[ChatKey, timedelta], None]
    backoff: Backoff = Backoff()
    lease: timedelta = timedelta(minutes=1)  # a sender that crashed mid-send is taken over after

    def claim(self, *, customer_wrote: bool) -> Claim:
        """What a sender takes now: the chat's due messages, held for the lease."""
        now = self.clock()
        return Claim(customer_wrote, now, now + self.lease)

    async def flush(self, key: ChatKey, *, customer_wrote: bool = False) -> None:
        taken = await self.outbox.take(key, self.claim(customer_wrote=customer_wrote))
        await self.send(taken, answering=customer_wrote)

    async def send(self, taken: Sequence[Outgoing], *, answering: bool = False) -> None:
        """Send messages taken for a chat, in order; after one that is to be retried, the rest
        go back untried, due with it (a chat's messages never overtake each other)."""
        for n, message in enumerate(taken):
            retry_at = await self._send(message, answering=answering)
            if retry_at is not None:
                await self.outbox.release([later.id for later in taken[n + 1 :]], next_at=retry_at)
                return

    async def deliver(
        self, message: Outgoing, *, answering: bool = False, send: Send | None = None
    ) -> bool:
        """Claim and send one message (through ``send`` if given: a channel's other way of
        sending it); False if it is to be retried (so the chat's next ones wait)."""
        now = self.clock()
        # Another replica may flush the same chat (SQLite has no cross-process chat lock).
        if not await self.outbox.claim(message.id, until=now + self.lease, now=now):
            return True
        return await self._send(message, answering=answering, send=send) is None

    async def _send(
        self, message: Outgoing, *, answering: bool, send: Send | None = None
    ) -> datetime | None:
        """Send a message its sender holds; when it is to be retried, when."""
        send = send or self.messenger.send
        try:
            vendor_id = await send(
                message.key, message.reply, answering=answering, contact=message.contact
            )
        except (NotDeliverableNow, DeliveryFailed) as error:
            return await self.settle(message, error)
        await self.outbox.sent(message.id, vendor_id=vendor_id, at=self.clock())
        return None

    async def settle(self, message: Outgoing, error: Exception) -> datetime | None:
        """Record what ``fate`` says of a message that did not go; if it is retried, when."""
        now, chat = self.clock(), mask_chat(message.key)
        match fate(error):
            case Fate.WAIT:
                logger.info("message %s to %s waits for the customer: %s", message.id, chat, error)
                await self.outbox.wait(message.id, at=now)
                return None
            case Fate.GIVE_UP:
                logger.warning("message %s to %s refused for good: %s", message.id, chat, error)
                await self.outbox.give_up(message.id, reason=str(error)[:200], at=now)
                return None
        delay = self.backoff.delay(message.attempts, error)
        logger.info("message %s to %s again in %s: %s", message.id, chat, delay, error)
        await self.outbox.retry(message.id, attempts=message.attempts + 1, next_at=now + delay)
        self.later(message.key, delay)
        return now + delay
