"""After the payment: record webhooks, top up exactly once, refund, expire, tell the customer.

Every step is a conditional state change of the order (``Orders.move``), so running any of them
twice, concurrently, or again after a crash does nothing new. ``resume()`` is the one pass that
pushes every unfinished order on; it runs at start-up, periodically, and when pushing one order on
straight after its webhook (``push``) failed.

A refused top-up is sorted by kind: transient refusals are sent again with the same identifier
after a growing, bounded backoff; a precondition on our side (an empty wallet) holds the paid order
and alerts the operators until a deadline, then refunds it; a permanent refusal refunds at once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from conversations.errors import (
    FailureKind,
    PaymentProviderError,
    TopUpRejected,
    TopUpUnknown,
)
from conversations.model import (
    SETTLED_STATES,
    Order,
    OrderState,
    PaymentEvent,
    PaymentEventKind,
    PaymentProblem,
)
from conversations.ports import (
    Alerts,
    CheckoutView,
    Move,
    OrderChanges,
    Orders,
    OrderWork,
    Payments,
    TopUps,
    TopUpState,
)

logger = logging.getLogger(__name__)

S = OrderState
PAYABLE = frozenset({S.AWAITING_PAYMENT, S.CANCELLED, S.EXPIRED})
IN_FLIGHT = frozenset({S.TOPPING_UP, S.TOPUP_UNKNOWN})
ACCEPTED_BRANDS = frozenset({"visa", "mastercard"})  # as Stripe names a charge's card brand


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on sending a refused top-up again, in attempts and in time."""

    max_attempts: int = 4
    first_delay: timedelta = timedelta(seconds=30)
    hold_retry: timedelta = timedelta(minutes=10)
    hold_deadline: timedelta = timedelta(hours=2)

    def delay(self, order_id: str, attempt: int) -> timedelta:
        """Exponential backoff with a jitter below half a step, so the gaps always grow."""
        jitter = random.Random(f"{order_id}:{attempt}").random() / 2  # repeatable per order
        return self.first_delay * (2.0 ** (attempt - 1)) * (1 + jitter)


@dataclass
class Fulfilment:
    orders: Orders
    work: OrderWork
    payments: Payments
    topups: TopUps
    # Puts the order's notice in the chat's outbox and sends it; with a Move, makes that move in
    # the same write (nothing is told if the order cannot make it: another caller ended it).
    tell: Callable[[Order, Move | None], Awaitable[None]]
    clock: Callable[[], datetime]
    alerts: Alerts
    retry: RetryPolicy = RetryPolicy()
    # Tells an ended order again (an operator's resend) as a new message: ``tell``'s notice goes
    # once per order state, so a resend through it would be dropped as already sent.
    retell: Callable[[Order], Awaitable[None]] | None = None
    stale_after: timedelta = timedelta(minutes=2)

    async def record(self, event: PaymentEvent) -> Order | None:
        """Apply a verified payment webhook to its order in one write, which reads the order
        too; the work it causes is left to push() or resume(). Returns the order if this event
        claimed it for its top-up, for push() to send (None otherwise)."""
        if not event.order_id:
            logger.warning("payment event %s names no order, ignored", event.event_id)
            return None
        # Events arrive in any order: act on the session as it is now, not on the event's type.
        view = await self.payments.retrieve(event.session_id)
        if view.paid:
            return await self._paid(event.order_id, view, event.event_id, event.session_id)
        if event.kind in (PaymentEventKind.EXPIRED, PaymentEventKind.ASYNC_FAILED):
            expiry = Move(frozenset({S.AWAITING_PAYMENT}), S.EXPIRED)
            session_id = event.session_id
            await self.orders.decide(
                event.order_id, lambda order: expiry if _pays_for(order, session_id) else None,
                at=self.clock(), event_id=event.event_id,
            )  # fmt: skip
        return None

    async def fulfil_checkout(self, order_id: str) -> None:
        """Check the order's own checkout with the gateway and top up if it is paid (idempotent)."""
        order = await self.orders.get(order_id)
        if order is None or order.checkout is None or order.state not in PAYABLE:
            return
        view = await self.payments.retrieve(order.checkout.session_id)
        await self._top_up_claimed(await self._paid(order.id, view, None, view.session_id))

    async def _paid(
        self, order_id: str, view: CheckoutView, event_id: str | None, session_id: str
    ) -> Order | None:
        """Record a payment of the order's checkout ``session_id``: a good one claims the order
        for its top-up, PAID on the way to TOPPING_UP in the same write (a crash before the
        top-up is sent leaves a claim the worker settles once stale, by asking the provider,
        which never got it). The order as claimed, or None (not paid, not its checkout, moved
        on already, or a payment that must not be topped up: flagged or refunded)."""
        if not view.paid:
            return None  # an asynchronous payment still pending: its own event follows

        def choose(order: Order) -> Move | None:
            if order.state not in PAYABLE:
                return None  # recorded already: a repeated event, or another of its checkouts
            if not _pays_for(order, session_id):
                logger.warning("payment for another checkout of order=%s, ignored", order.id)
                return None
            if view.order_id != order.id:  # whose money it is is for a human to tell
                return Move(PAYABLE, S.FLAGGED, OrderChanges(failure="mismatch"))
            if problem := _problem(order, view):  # refunded in full, never topped up
                changes = OrderChanges(payment_ref=view.payment_ref, failure=problem.value)
                return Move(PAYABLE, S.TOPUP_FAILED, changes)
            return Move(PAYABLE, S.TOPPING_UP, OrderChanges(payment_ref=view.payment_ref), S.PAID)

        moved = await self.orders.decide(order_id, choose, at=self.clock(), event_id=event_id)
        if moved is None or moved.state is S.TOPPING_UP:
            return moved
        if moved.state is S.FLAGGED:
            await self.alerts.alert("payment does not match the order", order_id=order_id)
        else:  # refunded by push() or the next pass
            await self.alerts.alert(
                f"payment refused after checkout ({moved.failure})", order_id=order_id
            )
        return None

    async def resume(self) -> None:
        """Push every unfinished order one step further; safe to run at any time."""
        now = self.clock()
        for order in await self.work.unfinished(now=now, stale_before=now - self.stale_after):
            try:
                await self._advance(order)
            except Exception:
                logger.exception("could not advance order=%s (state %s)", order.id, order.state)

    async def push(self, order_id: str, claimed: Order | None = None) -> None:
        """Push one order on at once (its webhook just came), instead of waiting for a pass:
        a pass reads every unfinished order, which under load is most of the work per payment.
        ``claimed``: the order record() claimed for its top-up, sent here without a read."""
        if claimed is not None:
            await self._send_top_up(claimed)
            return
        order = await self.orders.get(order_id)
        if order is None:
            return
        # Only what the webhook itself settles: a paid order due for its top-up, a payment to
        # refund, or an outcome to tell. Anything else (a link still awaiting an asynchronous
        # payment, a top-up in flight on another replica, a retry's backoff) is the pass's,
        # which knows when it is due.
        due = order.next_attempt_at is None or order.next_attempt_at <= self.clock()
        if (order.state is S.PAID and due) or order.state in {S.TOPUP_FAILED, *SETTLED_STATES}:
            await self._advance(order)

    async def _advance(self, order: Order) -> None:
        if order.state is S.PAID:
            await self._top_up_paid(order)
        elif order.state in IN_FLIGHT:
            await self._settle_from_status(order)
        elif order.state is S.TOPUP_FAILED:
            await self.refund(order.id)
        elif order.state is S.HELD:
            await self._held(order)
        elif order.state is S.AWAITING_PAYMENT:
            await self._close_expired(order)
        elif order.state in SETTLED_STATES:
            await self.tell_customer(order.id)

    async def _top_up_claimed(self, claimed: Order | None) -> None:
        if claimed is not None:
            await self._send_top_up(claimed)

    async def _top_up_paid(self, order: Order) -> None:
        if await self._move(order, {S.PAID}, S.TOPPING_UP):
            await self._send_top_up(order)

    async def _send_top_up(self, order: Order) -> None:
        try:
            operation_id = await self.topups.send(order)
        except TopUpUnknown:
            logger.warning("top-up outcome unknown for order=%s: will ask the status", order.id)
            await self._move(order, {S.TOPPING_UP}, S.TOPUP_UNKNOWN)
            return
        except TopUpRejected as rejected:
            await self._rejected(order, rejected)
            return
        await self._completed(order, operation_id)

    async def _completed(self, order: Order, operation_id: str | None) -> None:
        """Record the top-up done and tell the customer, in one write: the chat's save of the
        notice makes the move (``tell``). Should telling fail, the move is made alone, so the
        record of a credited line never waits on a notice (the next pass tells it)."""
        done = Move(IN_FLIGHT, S.COMPLETED, OrderChanges(operation_id=operation_id))
        try:
            await self.tell(done.applied_to(order), done)
        except Exception:
            await self._move(order, done.from_, done.to, done.changes)
            raise
        logger.info("order=%s topped up", order.id)

    async def _rejected(self, order: Order, rejected: TopUpRejected) -> None:
        if rejected.kind is FailureKind.PERMANENT:
            await self._move(
                order, {S.TOPPING_UP}, S.TOPUP_FAILED, OrderChanges(failure=rejected.code)
            )
            await self.refund(order.id)
            return
        attempt = order.attempts + 1
        if rejected.kind is FailureKind.TRANSIENT and attempt < self.retry.max_attempts:
            logger.warning("top-up of order=%s refused (%s): retry later", order.id, rejected.code)
            later = self.clock() + self.retry.delay(order.id, attempt)
            changes = OrderChanges(failure=rejected.code, attempts=attempt, next_attempt_at=later)
            await self._move(order, {S.TOPPING_UP}, S.PAID, changes)
            return
        await self._hold(order, rejected.code, attempt)

    async def _hold(self, order: Order, code: str, attempt: int) -> None:
        """Keep the paid order, try again now and then, and refund it after the deadline."""
        now = self.clock()
        changes = OrderChanges(
            failure=code, attempts=attempt, next_attempt_at=now + self.retry.hold_retry,
            refund_after=now + self.retry.hold_deadline,
        )  # fmt: skip
        if await self._move(order, {S.TOPPING_UP}, S.HELD, changes) and order.refund_after is None:
            await self.alerts.alert(f"top-up held: provider refused ({code})", order_id=order.id)

    async def _held(self, order: Order) -> None:
        now = self.clock()
        if order.refund_after is not None and order.refund_after <= now:
            if await self._move(order, {S.HELD}, S.TOPUP_FAILED):
                await self.alerts.alert("held top-up past its deadline", order_id=order.id)
            await self.refund(order.id)
        elif await self._move(order, {S.HELD}, S.TOPPING_UP):
            await self._send_top_up(order)

    async def _settle_from_status(self, order: Order) -> None:
        status = await self.topups.status(order.id)
        if status.state is TopUpState.SUCCESSFUL:
            await self._completed(order, status.operation_id)
        elif status.state is TopUpState.FAILED:
            await self._move(order, IN_FLIGHT, S.TOPUP_FAILED, OrderChanges(failure="failed"))
            await self.refund(order.id)
        elif status.state is TopUpState.NOT_FOUND and await self._move(
            order, IN_FLIGHT, S.TOPPING_UP
        ):
            # The provider never got it: sending again with the same identifier is safe.
            await self._send_top_up(order)

    async def refund(self, order_id: str) -> None:
        """Refund a failed top-up in full; the gateway dedupes by order id."""
        order = await self.orders.get(order_id)
        if order is None or order.state is not S.TOPUP_FAILED:
            return
        await self.payments.refund(order)
        if await self._move(order, {S.TOPUP_FAILED}, S.REFUNDED):
            logger.info("order=%s refunded", order.id)
            await self.tell_customer(order.id)

    # ------------------------------------------------ what operators may do (bot.admin)

    async def retry_held(self, order_id: str) -> None:
        """Send a held top-up again now (the wallet was refilled); its refund deadline stands."""
        order = await self.orders.get(order_id)
        if order and order.state is S.HELD and await self._move(order, {S.HELD}, S.TOPPING_UP):
            await self._send_top_up(order)

    async def refund_now(self, order_id: str, *, reason: str) -> bool:
        """Refund a paid order whose top-up did not go through (held or failed); True once it
        is refunded. Safe to repeat: the gateway dedupes by order id, the move is conditional."""
        order = await self.orders.get(order_id)
        if order is None:
            return False
        if order.state is S.HELD:
            await self._move(order, {S.HELD}, S.TOPUP_FAILED, OrderChanges(failure=reason))
        await self.refund(order_id)
        refunded = await self.orders.get(order_id)
        return refunded is not None and refunded.state is S.REFUNDED

    async def resend_notice(self, order_id: str) -> bool:
        """Tell the customer again how the order ended; False if it has not ended."""
        order = await self.orders.get(order_id)
        if order is None or order.state not in SETTLED_STATES:
            return False
        await (self.retell(order) if self.retell else self.tell(order, None))
        return True

    async def _close_expired(self, order: Order) -> None:
        if order.checkout is None:
            await self._move(order, {S.AWAITING_PAYMENT}, S.CANCELLED)
            return
        view = await self.payments.retrieve(order.checkout.session_id)
        if view.paid:
            await self._top_up_claimed(await self._paid(order.id, view, None, view.session_id))
            return
        try:
            await self.payments.expire(order.checkout.session_id)
        except PaymentProviderError:
            logger.warning("could not expire the checkout of order=%s", order.id, exc_info=True)
            return
        if await self._move(order, {S.AWAITING_PAYMENT}, S.EXPIRED):
            await self.tell_customer(order.id)

    async def tell_customer(self, order_id: str) -> None:
        """Tell the customer how the order ended. ``tell`` puts the notice in the chat's outbox,
        which owns its delivery, and records it told in that write: it goes once, however many
        tellers (this push, a pass, another replica) try."""
        order = await self.orders.get(order_id)
        if order is not None and order.state in SETTLED_STATES:
            await self.tell(order, None)

    async def _move(
        self,
        order: Order,
        source: set[OrderState] | frozenset[OrderState],
        target: OrderState,
        changes: OrderChanges = OrderChanges(),
        event_id: str | None = None,
    ) -> bool:
        return await self.orders.move(
            order.id, from_=frozenset(source), to=target, at=self.clock(), changes=changes,
            event_id=event_id,
        )  # fmt: skip


def _pays_for(order: Order, session_id: str) -> bool:
    """True if ``session_id`` is the order's checkout (an order may have had others)."""
    return order.checkout is not None and order.checkout.session_id == session_id


def _problem(order: Order, view: CheckoutView) -> PaymentProblem | None:
    """What is wrong with a payment of the right order: its card, or what was charged."""
    if (view.amount_cents, view.currency) != (order.amount_cents, "pen"):
        return PaymentProblem.AMOUNT
    if view.card_brand not in ACCEPTED_BRANDS:
        return PaymentProblem.CARD_BRAND
    return None
