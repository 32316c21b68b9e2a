"""Handle one chat event: load the session, run the machine, perform its effects, save, reply.

Updates of one chat are handled one at a time (a per-chat lock); different chats run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime

from conversations import messages as msg
from conversations.delivery import Courier
from conversations.errors import PaymentProviderError
from conversations.machine import (
    CallPerson,
    CancelAnswered,
    CancelCheckout,
    CheckOperator,
    CheckoutFailed,
    CheckoutOpened,
    CheckoutRefused,
    Choice,
    Effect,
    ErasePersonalData,
    Event,
    HandedBack,
    HistoryLoaded,
    NoteForPerson,
    OpenCheckout,
    OperatorChecked,
    OrderSettled,
    PersonalDataLoaded,
    ProfileChange,
    RecordConsent,
    RecordPromos,
    RememberLine,
    Rules,
    Say,
    ShowHistory,
    ShowPersonalData,
    Text,
    Verdict,
    options,
    step,
)
from conversations.masking import mask_chat, mask_msisdn
from conversations.messages import Reply
from conversations.model import ChatKey, Order, OrderState, PersonalData, Purchase
from conversations.ports import (
    Alerts,
    ChatLocks,
    ConversationStore,
    HandoffNotes,
    Messenger,
    Move,
    OrderChanges,
    Orders,
    Outgoing,
    Payments,
    Privacy,
    Sender,
    TopUps,
    Usage,
)
from conversations.privacy_guard import Guard
from conversations.session import Session

logger = logging.getLogger(__name__)


class KeyedLocks:
    """One asyncio lock per chat, forgotten when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[ChatKey, asyncio.Lock] = {}
        self._users: dict[ChatKey, int] = {}

    @asynccontextmanager
    async def hold(self, key: ChatKey) -> AsyncIterator[None]:
        async with self._entered(key) as lock, lock:
            yield

    @asynccontextmanager
    async def hold_now(self, key: ChatKey, *, within: float = 0.0) -> AsyncIterator[bool]:
        ahead = self._users.get(key, 0)  # its holder, and those waiting for it
        if ahead > 1 or (ahead and within <= 0):
            yield False
            return
        async with self._entered(key) as lock:
            try:
                async with asyncio.timeout(within if ahead else None):
                    await lock.acquire()  # a free lock is taken without a pause
            except TimeoutError:
                held = False
            else:
                held = True
            try:
                yield held
            finally:
                if held:
                    lock.release()

    @asynccontextmanager
    async def _entered(self, key: ChatKey) -> AsyncIterator[asyncio.Lock]:
        """The chat's lock, counted as used (held or waited for) until the block ends."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            yield lock
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key], self._locks[key]


_HELD: ContextVar[frozenset[ChatKey]] = ContextVar("chats_held", default=frozenset())


class ReentrantLocks:
    """A ChatLocks through which a task already holding a chat passes straight on.

    The Telegram inbox holds a chat around its handlers, which hold it again: without this the
    second hold would wait for the first forever. What is held travels in a context variable, so
    a task started inside (a handler with block=False) passes too; a task that outlives the hold,
    such as a promo campaign, must not handle that chat's turns.
    """

    def __init__(self, inner: ChatLocks) -> None:
        self._inner = inner

    @asynccontextmanager
    async def hold(self, key: ChatKey) -> AsyncIterator[None]:
        held = _HELD.get()
        if key in held:
            yield
            return
        async with self._inner.hold(key):
            with _holding(held | {key}):
                yield

    @asynccontextmanager
    async def hold_now(self, key: ChatKey, *, within: float = 0.0) -> AsyncIterator[bool]:
        held = _HELD.get()
        if key in held:
            yield True
            return
        async with self._inner.hold_now(key, within=within) as now:
            if not now:
                yield False
                return
            with _holding(held | {key}):
                yield True


@contextmanager
def _holding(held: frozenset[ChatKey]) -> Iterator[None]:
    token = _HELD.set(held)
    try:
        yield
    finally:
        _HELD.reset(token)


@dataclass(frozen=True)
class Delivery:
    """The channel's message an event came in: recorded as delivered with the chat's save, after
    which ``stored`` is called (what the message changed is durable; only sending is left)."""

    id: str
    stored: Callable[[], None] = lambda: None


@dataclass
class ChatService:
    store: ConversationStore
    orders: Orders
    payments: Payments
    topups: TopUps
    messenger: Messenger
    rules: Rules
    clock: Callable[[], datetime]
    new_id: Callable[[], str]
    courier: Courier
    locks: ChatLocks = field(default_factory=KeyedLocks)
    privacy: Privacy | None = None
    usage: Usage | None = None
    guard: Guard = field(default_factory=Guard)
    operators: Alerts | None = None  # where a chat asking for a person is raised
    notes: HandoffNotes | None = None  # what a chat handed to a person says, kept for them

    async def handle(
        self,
        key: ChatKey,
        event: Event,
        *,
        delivery: Delivery | None = None,
        settles: Move | None = None,
    ) -> None:
        """Feed one event to the chat's conversation and send the replies, in order.

        Replies go through the outbox: saved with the chat's new state, then sent, after what
        the chat still owes (a notice waiting for the customer goes first when they write).
        ``settles``: the move that ended the order an ``OrderSettled`` tells, made in the
        chat's save (``ConversationStore.save``)."""
        async with self.locks.hold(key):
            wrote = isinstance(event, Text | Choice)  # what the customer sends, not the world
            stopped = None
            if isinstance(event, Text | Choice):
                stopped = await self.guard.screen(key, event, self.store, now=self.clock())
            if stopped is None:
                delivered = delivery.id if delivery else None
                taken = await self._run(
                    key, event, customer_wrote=wrote, delivery=delivered, settles=settles
                )
            else:  # a flood, or a card number: the machine never sees it
                await self.courier.outbox.add(self._outgoing(key, event, stopped), at=self.clock())
                taken = None
            if delivery:
                delivery.stored()
            if taken is None:
                await self.courier.flush(key, customer_wrote=wrote)
            else:
                await self.courier.send(taken, answering=wrote)

    async def answer(self, key: ChatKey, reply: Reply, *, customer_wrote: bool = True) -> None:
        """Send the customer one message outside the conversation, through the outbox: the
        answer to a channel keyword, or (``customer_wrote=False``) one an operator sends."""
        async with self.locks.hold(key):
            await self.courier.outbox.add(
                [Outgoing(f"{self.new_id()}:0", key, reply)], at=self.clock()
            )
            await self.courier.flush(key, customer_wrote=customer_wrote)

    async def repeat_notice(self, order: Order) -> None:
        """Tell the customer again how their order ended, as a new message (an operator's
        resend); the chat's state is left as it is."""
        await self.answer(order.key, msg.settled(order), customer_wrote=False)

    async def deliver(self, key: ChatKey) -> None:
        """Send what the chat's outbox holds now (a retry's timer, the worker's pass)."""
        async with self.locks.hold(key):
            await self.courier.flush(key)

    def _outgoing(self, key: ChatKey, event: Event, replies: list[Reply]) -> list[Outgoing]:
        """Ids for the replies: an order's notice has one per order state, so it goes once."""
        if isinstance(event, OrderSettled):
            base = f"notice:{event.order.id}:{event.order.state.value}"
        else:
            base = self.new_id()
        return [Outgoing(f"{base}:{n}", key, reply) for n, reply in enumerate(replies)]

    async def answer_as_person(self, key: ChatKey, text: str) -> None:
        """Send a person's answer to a chat handed to them, and keep it with the chat's notes."""
        await self.answer(key, Reply(text), customer_wrote=False)
        if self.notes is not None:
            await self.notes.keep(key, text, sender=Sender.PERSON, at=self.clock())

    async def hand_back(self, key: ChatKey) -> None:
        """A person is done with the chat: the bot answers it again."""
        await self.handle(key, HandedBack())

    async def _run(
        self,
        key: ChatKey,
        event: Event,
        *,
        customer_wrote: bool,
        delivery: str | None = None,
        settles: Move | None = None,
    ) -> Sequence[Outgoing] | None:
        """Step the conversation and save it with its replies, taking what the chat has to send
        in the same transaction; None when nothing was taken (the chat was erased)."""
        loaded, rules = await self._loaded(key)
        session = await self._with_order(loaded, event)
        pending: list[Event] = [event]
        replies: list[Reply] = []
        profile: list[ProfileChange] = []  # kept with the save
        erased = False
        while pending:
            transition = step(session, pending.pop(0), rules)
            session = transition.session
            for effect in transition.effects:
                erased = erased or isinstance(effect, ErasePersonalData)
                if isinstance(effect, Say):
                    replies.append(effect.reply)
                elif isinstance(effect, RecordConsent | RecordPromos | RememberLine):
                    profile.append(effect)
                elif (follow := await self._perform(key, effect)) is not None:
                    pending.append(follow)
        outgoing = self._outgoing(key, event, replies)
        if erased:  # saving would bring the erased chat back
            await self.courier.outbox.add(outgoing, at=self.clock())
            return None
        claim = self.courier.claim(customer_wrote=customer_wrote)
        notice = event.order if isinstance(event, OrderSettled) else None
        return await self.store.save(
            key, session, outgoing=outgoing, claim=claim, delivery=delivery, profile=profile,
            notice=notice, settles=settles,
        )  # fmt: skip

    async def offered(self, key: ChatKey) -> frozenset[str]:
        """The ids of the options the chat shows now (a WhatsApp button's payload is one)."""
        session, rules = await self._loaded(key)
        return frozenset(option.id for option in options(session, rules))

    async def _loaded(self, key: ChatKey) -> tuple[Session, Rules]:
        """The chat's session and the rules with the packages on sale now (operators edit them
        while the bot runs), in one read; a store that keeps no catalogue leaves the rules'."""
        session, sale = await self.store.load_for_step(key)
        return session, self.rules if sale is None else replace(self.rules, catalogue=sale)

    async def _with_order(self, session: Session, event: Event) -> Session:
        """Attach the order the chat waits on, as it stands now: replies about money follow it
        (an order's own notice carries it as it was just read)."""
        payment = session.payment
        if payment is None or payment.order_id is None:
            return session
        if isinstance(event, OrderSettled) and event.order.id == payment.order_id:
            return replace(session, order=event.order)
        return replace(session, order=await self.orders.get(payment.order_id))

    async def _perform(self, key: ChatKey, effect: Effect) -> Event | None:
        match effect:
            case CheckOperator(msisdn):
                return OperatorChecked(msisdn, await self._operator_of(msisdn))
            case OpenCheckout(purchase):
                return await self._open_checkout(key, purchase)
            case CancelCheckout(order_id):
                return await self._cancel_checkout(order_id)
            case CallPerson(complaint):
                await self._call_person(key, complaint=complaint)
            case NoteForPerson(text, opens) if self.notes:
                await self.notes.keep(
                    key, text, sender=Sender.CUSTOMER, at=self.clock(), opens=opens
                )
            case ShowHistory(limit):
                return HistoryLoaded(tuple(await self.orders.recent(key, limit=limit)))
            case ShowPersonalData():
                data = await self.privacy.personal_data(key) if self.privacy else PersonalData()
                return PersonalDataLoaded(data)
            case ErasePersonalData() if self.privacy:
                await self.privacy.erase(key, at=self.clock())
                logger.info("personal data erased chat=%s", mask_chat(key))
        return None

    async def _operator_of(self, msisdn: str) -> Verdict:
        try:
            return await self.topups.operator_of(msisdn)
        except Exception:
            # The top-up itself will tell; a lookup outage must not block the customer.
            logger.warning("operator lookup failed for %s", mask_msisdn(msisdn), exc_info=True)
            return Verdict.UNKNOWN

    async def _open_checkout(self, key: ChatKey, purchase: Purchase) -> Event:
        now = self.clock()
        if self.usage:
            if refusal := await self.guard.refusal(key, purchase, self.usage, now):
                logger.warning("checkout refused (%s) chat=%s", refusal.rule.value, mask_chat(key))
                return CheckoutRefused(refusal)
            await self._replace_links(key, await self.usage.open_links(purchase.line.msisdn))
        order = Order(self.new_id(), key, purchase, OrderState.AWAITING_PAYMENT, created_at=now)
        await self.orders.add(order)
        try:
            checkout = await self.payments.open_checkout(order)
        except PaymentProviderError:
            logger.warning("checkout failed order=%s chat=%s", order.id, mask_chat(key))
            await self._move(order.id, OrderState.AWAITING_PAYMENT, OrderState.CANCELLED)
            return CheckoutFailed()
        attached = await self._move(
            order.id, OrderState.AWAITING_PAYMENT, OrderState.AWAITING_PAYMENT,
            OrderChanges(checkout=checkout),
        )  # fmt: skip
        if not attached:
            # Never hand out a link for an order nobody waits on any more: it could be paid.
            await self.payments.expire(checkout.session_id)
            return CheckoutFailed()
        logger.info("checkout opened order=%s chat=%s", order.id, mask_chat(key))
        return CheckoutOpened(order.id, checkout.url)

    async def _replace_links(self, key: ChatKey, order_ids: Sequence[str]) -> None:
        """Expire the number's older payable links: one per number (``conversations.limits``).

        Another chat's link lapses (EXPIRED: the worker tells that chat, no charge was made);
        this chat's own older one is cancelled, as the new link stands in for it."""
        for order_id in order_ids:
            order = await self.orders.get(order_id)
            mine = order is not None and order.key == key
            await self._cancel_checkout(
                order_id, to=OrderState.CANCELLED if mine else OrderState.EXPIRED
            )
            logger.info("order=%s: its link was replaced by a newer one for the number", order_id)

    async def _cancel_checkout(
        self, order_id: str, *, to: OrderState = OrderState.CANCELLED
    ) -> CancelAnswered:
        """Cancel, close the link, then ask the gateway whether the card was charged after all."""
        # Mark first: if the customer pays in the meantime, the paid webhook still wins.
        cancelled = await self._move(order_id, OrderState.AWAITING_PAYMENT, to)
        order = await self.orders.get(order_id)
        if not cancelled or order is None or order.checkout is None:
            return CancelAnswered(
                order, charged=None if order is None else order.payment_ref is not None
            )
        try:
            await self.payments.expire(order.checkout.session_id)
            view = await self.payments.retrieve(order.checkout.session_id)
        except PaymentProviderError:
            logger.warning("could not expire checkout of order=%s", order_id, exc_info=True)
            return CancelAnswered(order, charged=None)
        return CancelAnswered(order, charged=view.paid)

    async def _call_person(self, key: ChatKey, *, complaint: bool) -> None:
        what = "un reclamo" if complaint else "hablar con una persona"
        logger.info("handoff (%s) chat=%s", "complaint" if complaint else "agent", mask_chat(key))
        if self.operators is not None:
            await self.operators.alert(
                f"Un cliente de {key.channel.value} ({mask_chat(key)}) pidió {what}."
            )

    async def _move(
        self,
        order_id: str,
        source: OrderState,
        target: OrderState,
        changes: OrderChanges = OrderChanges(),
    ) -> bool:
        return await self.orders.move(
            order_id, from_=frozenset({source}), to=target, at=self.clock(), changes=changes
        )
