"""The core's view of the outside world: narrow Protocols that adapters and storage implement."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from conversations.catalog import Catalogue
from conversations.limits import CheckoutUsage, RecipientUsage
from conversations.machine import ProfileChange, Verdict
from conversations.messages import Reply
from conversations.model import ChatKey, Checkout, Order, OrderState, PersonalData
from conversations.packages import Offer
from conversations.session import Session


class ConversationStore(Protocol):
    async def load(self, key: ChatKey) -> Session:
        """The chat's session with the customer's profile (consent, saved lines, last purchase)."""

    async def load_for_step(self, key: ChatKey) -> tuple[Session, Catalogue | None]:
        """The session as ``load``, and in the same read the packages on sale now (None: this
        store keeps no catalogue)."""

    async def save(
        self,
        key: ChatKey,
        session: Session,
        *,
        outgoing: Sequence[Outgoing] = (),
        claim: Claim | None = None,
        delivery: str | None = None,
        profile: Sequence[ProfileChange] = (),
        notice: Order | None = None,
        settles: Move | None = None,
    ) -> Sequence[Outgoing]:
        """Store the chat's state and put ``outgoing`` in the outbox, in one transaction; with
        ``claim``, also take the chat's messages to send now (as ``Outbox.take``) and return
        them, so the common path of a message is that one write. ``delivery``: the channel's id
        of the message answered, recorded as delivered in the same write (as
        ``Contacts.first_delivery``), so a repeat of it is dropped once the answer is stored.
        ``profile``: what the step keeps of the customer, in that write too (a promo answer of
        yes opts in and lifts a BAJA, no opts out; a line given again replaces its owner).
        ``notice``: the order whose outcome the replies tell, recorded as told in that write;
        when it was told already, or has moved on from that state, nothing is stored and
        nothing taken (the notice goes once). ``settles``: the move that ended that order (a
        completed top-up), made first in that write; nothing is stored if it cannot be made."""


@dataclass(frozen=True)
class OrderChanges:
    """Fields set together with a state change."""

    checkout: Checkout | None = None
    payment_ref: str | None = None
    operation_id: str | None = None
    failure: str | None = None
    attempts: int | None = None
    next_attempt_at: datetime | None = None
    refund_after: datetime | None = None  # set once: a later hold keeps the first deadline


@dataclass(frozen=True)
class Move:
    """A change of an order's state, made only from one of ``from_``; ``via``: a state it
    passes through on the way (noted on its timeline, never stored as its state)."""

    from_: frozenset[OrderState]
    to: OrderState
    changes: OrderChanges = OrderChanges()
    via: OrderState | None = None

    def applied_to(self, order: Order) -> Order:
        """The order as this move leaves it (as ``Orders.move`` writes it: unset changes keep
        the order's own values, and a first refund deadline stands)."""
        given = {  # each change is the order's field of the same name
            name: value
            for name in (change.name for change in fields(self.changes))
            if (value := getattr(self.changes, name)) is not None
        }
        if order.refund_after is not None:
            given.pop("refund_after", None)
        return replace(order, state=self.to, **given)


class Orders(Protocol):
    async def add(self, order: Order) -> None: ...

    async def get(self, order_id: str) -> Order | None: ...

    async def recent(self, key: ChatKey, *, limit: int) -> Sequence[Order]:
        """The chat's latest orders that reached a checkout, newest first."""

    async def move(
        self,
        order_id: str,
        *,
        from_: frozenset[OrderState],
        to: OrderState,
        at: datetime,
        changes: OrderChanges = OrderChanges(),
        event_id: str | None = None,
    ) -> bool:
        """Change state only from an expected one; True for the one caller that won.

        With ``event_id`` the webhook event is recorded as processed in the same transaction;
        an event already recorded changes nothing and returns False.
        """

    async def decide(
        self,
        order_id: str,
        choose: Callable[[Order], Move | None],
        *,
        at: datetime,
        event_id: str | None = None,
    ) -> Order | None:
        """Read the order and make the move ``choose`` picks for it, in one transaction (as
        ``move``, with ``event_id``); the order as moved, or None when nothing moved."""


class OrderWork(Protocol):
    async def unfinished(self, *, now: datetime, stale_before: datetime) -> Sequence[Order]:
        """Orders a worker must push on: paid, stuck, failed, expired links, or not yet told."""


@dataclass(frozen=True)
class CheckoutView:
    """A checkout as the gateway sees it now (re-fetched, never taken from a webhook body)."""

    session_id: str
    order_id: str | None
    paid: bool
    open: bool
    amount_cents: int
    currency: str
    payment_ref: str | None = None
    card_brand: str | None = None  # of the payment's charge ("visa", "mastercard", "amex"…)


class Payments(Protocol):
    async def open_checkout(self, order: Order) -> Checkout: ...

    async def retrieve(self, session_id: str) -> CheckoutView: ...

    async def expire(self, session_id: str) -> None:
        """Close an open checkout so it can no longer be paid (no-op if already closed)."""

    async def refund(self, order: Order) -> str:
        """Refund the order in full, once, whatever the number of calls; return the refund id."""


class TopUpState(StrEnum):
    SUCCESSFUL = "successful"
    PROCESSING = "processing"
    FAILED = "failed"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class TopUpStatus:
    state: TopUpState
    operation_id: str | None = None


class TopUps(Protocol):
    async def operator_of(self, msisdn: str) -> Verdict: ...

    async def send(self, order: Order) -> str:
        """Credit the line with ``order.id`` as the provider's identifier; return its operation id.

        Raises TopUpUnknown when the outcome is not known, TopUpRejected when nothing was credited.
        """

    async def status(self, order_id: str) -> TopUpStatus: ...


@dataclass(frozen=True)
class Balance:
    """What the provider's wallet holds, in its own currency's minor units (USD cents at Reloadly,
    unless the account is in soles)."""

    amount_minor: int
    currency: str


@runtime_checkable
class Wallet(Protocol):
    """A top-up provider that says how much it can still credit (the operators' dashboard)."""

    async def balance(self) -> Balance: ...


@runtime_checkable
class PackageSource(Protocol):
    async def offers(self) -> Sequence[Offer]:
        """The packages the top-up provider sells now (its bundle and data plans)."""


class Alerts(Protocol):
    async def alert(self, what: str, *, order_id: str | None = None) -> None:
        """Tell the operators that something needs a human (no personal data in ``what``)."""


class Sender(StrEnum):
    """Who wrote a message of a chat handed to a person."""

    CUSTOMER = "customer"
    PERSON = "person"


class HandoffNotes(Protocol):
    async def keep(
        self, key: ChatKey, body: str, *, sender: Sender, at: datetime, opens: bool = False
    ) -> None:
        """Keep a message of a chat handed to a person (``opens``: the one asking for them)."""


class ChatLocks(Protocol):
    def hold(self, key: ChatKey) -> AbstractAsyncContextManager[None]:
        """Hold the chat while one update is handled, so its updates go one at a time."""

    def hold_now(self, key: ChatKey, *, within: float = 0.0) -> AbstractAsyncContextManager[bool]:
        """Hold the chat if nobody holds or waits for it here, or if only its holder here is
        ahead and lets it go within ``within`` seconds; else yield False at once (the Telegram
        webhook keeps the update then). Yields whether it is held."""


class Messenger(Protocol):
    async def send(
        self, key: ChatKey, reply: Reply, *, answering: bool = False, contact: Contact | None = None
    ) -> str | None:
        """Send the reply; return the vendor's id of the (last) message sent, if any.

        ``answering``: the customer has just written, so they can be reached and need not be
        looked up first. ``contact``: how they may be reached, as read with the message (not
        read again). Raises the errors ``conversations.delivery.fate`` sorts."""


@dataclass(frozen=True)
class Claim:
    """A sender taking a chat's messages: those due at ``now`` (the waiting ones too when the
    customer has just written), held until ``until`` (then another sender may take them)."""

    customer_wrote: bool
    now: datetime
    until: datetime


@dataclass(frozen=True)
class Outgoing:
    """A message in the outbox: ``id`` is ours, so the same message is put in at most once."""

    id: str
    key: ChatKey
    reply: Reply
    attempts: int = 0
    # How the customer could be reached when the message was taken, read in that transaction
    # (None: not read; the messenger reads it if it needs it).
    contact: Contact | None = field(default=None, compare=False)


class Outbox(Protocol):
    """Messages to customers, kept until the vendor took them (or they cannot ever go)."""

    async def add(self, outgoing: Sequence[Outgoing], *, at: datetime) -> None:
        """Put messages in (an id already there is left as it is)."""

    async def take(self, key: ChatKey, claim: Claim) -> Sequence[Outgoing]:
        """Claim the chat's messages to send now, oldest first: pending ones, those a sender
        claimed and left (crashed), and those waiting for the customer when they have just
        written. Another sender gets none of them until ``claim.until``."""

    async def claim(self, message_id: str, *, until: datetime, now: datetime) -> bool:
        """Take one message to send it; False if sent, or another sender holds it."""

    async def release(self, message_ids: Sequence[str], *, next_at: datetime) -> None:
        """Give back taken messages that were not tried (one before them is to be retried)."""

    async def chats_due(self, *, now: datetime) -> Sequence[ChatKey]:
        """Chats with a message due by ``now`` (after a restart, or a lost timer)."""

    async def sent(self, message_id: str, *, vendor_id: str | None, at: datetime) -> None: ...

    async def retry(self, message_id: str, *, attempts: int, next_at: datetime) -> None: ...

    async def wait(self, message_id: str, *, at: datetime) -> None:
        """Keep the message until the customer writes again."""

    async def give_up(self, message_id: str, *, reason: str, at: datetime) -> None:
        """Record that the message can never go as it is (kept, with the reason)."""


@dataclass(frozen=True)
class Contact:
    """How the bot may reach a customer on their channel."""

    last_inbound_at: datetime | None = None
    unreachable: bool = False  # the customer blocked the bot (Telegram 403)
    opted_out: bool = False  # the customer said BAJA / STOP (or Twilio answered 21610)


class Contacts(Protocol):
    async def first_delivery(self, key: ChatKey, message_id: str, *, at: datetime) -> bool:
        """Note an inbound message; False if this provider message id was already seen.

        A first delivery also marks the customer heard from at ``at`` and reachable again.
        """

    async def contact(self, key: ChatKey) -> Contact: ...

    async def mark(
        self,
        key: ChatKey,
        *,
        at: datetime,
        unreachable: bool | None = None,
        opted_out: bool | None = None,
        promos: bool | None = None,
    ) -> None:
        """Set the flags given (None leaves a flag as it is); ``promos`` is the promo opt-in."""


class Privacy(Protocol):
    """The customer's personal data, for the rights of access and erasure (Ley 29733)."""

    async def personal_data(self, key: ChatKey) -> PersonalData: ...

    async def erase(self, key: ChatKey, *, at: datetime) -> None:
        """Delete the chat's personal data; anonymise its settled orders, keeping the figures."""


class Usage(Protocol):
    """Counts the abuse limits are checked against (``conversations.limits``)."""

    async def checkouts(self, key: ChatKey, *, now: datetime) -> CheckoutUsage: ...

    async def recipient(self, msisdn: str, *, since: datetime) -> RecipientUsage:
        """What was paid for ``msisdn`` since then (``conversations.limits``)."""
        ...

    async def open_links(self, msisdn: str) -> Sequence[str]:
        """The orders for ``msisdn``, from any chat, whose links can still be paid."""
        ...
