"""Orders: ``SqlOrders`` is the ``Orders`` and ``OrderWork`` ports, with the rows <-> core mapping.

Each method is one short transaction on a connection of its own, in Core statements: no ORM
session, whose bookkeeping was a fifth of the database work of an update (bench/). Every order
state change is a conditional UPDATE (from the expected states only), so racing callers cannot
both win, and it notes the state reached on the order's timeline in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.model import (
    SETTLED_STATES,
    Channel,
    ChatKey,
    Checkout,
    Order,
    OrderState,
    Product,
    ProductKind,
    Purchase,
)
from conversations.ports import Move, OrderChanges
from storage.customers import customer_of, line_of, upsert_customer
from storage.driver import Driver, Rollback, Statement, Work, prefixed, set_columns
from storage.models import OrderEventRow, OrderRow, ProcessedEventRow, table_of
from storage.upserts import put

logger = logging.getLogger(__name__)

UNFINISHED_LIMIT = 500
ORDERS = table_of(OrderRow)
ORDER = ORDERS.c
_INSERT_ORDER = Statement(insert(ORDERS), columns=tuple(OrderRow.model_fields))
_EVENTS = table_of(OrderEventRow)
_INSERT_EVENT = Statement(insert(_EVENTS), columns=("order_id", "state", "cause", "at"))
# A move through a state (paid, on to the top-up) notes both on the timeline in one statement.
_INSERT_TWO_EVENTS = Statement(
    insert(_EVENTS).values(
        [
            {
                "order_id": bindparam("order_id", type_=_EVENTS.c.order_id.type),
                "state": bindparam(f"state_{n}", type_=_EVENTS.c.state.type),
                "cause": bindparam(f"cause_{n}", type_=_EVENTS.c.cause.type),
                "at": bindparam("at", type_=_EVENTS.c.at.type),
            }
            for n in (0, 1)
        ]
    )
)
_ORDER = Statement(select(ORDERS).where(ORDER.id == bindparam("order_id")))
_EXISTS = Statement(select(ORDER.id).where(ORDER.id == bindparam("order_id")))
# The order columns purchase_of reads.
BOUGHT = (
    "msisdn", "owner_name", "doc_type", "doc_number", "product_code", "product_kind",
    "product_name", "product_details", "validity_days", "amount_cents", "operator_id", "face_cents",
)  # fmt: skip


@dataclass
class SqlOrders:
    """Orders and the worker's view of them (implements ``Orders`` and ``OrderWork``)."""

    engine: AsyncEngine

    def __post_init__(self) -> None:
        self._driver = Driver(self.engine)

    async def add(self, order: Order) -> None:
        """Store a new order (and its customer, the first time)."""
        await self._driver.run(_add(order))

    async def get(self, order_id: str) -> Order | None:
        """Return the order, or None if there is no such order."""
        return await self._driver.run(_get(order_id), write=False)

    async def recent(self, key: ChatKey, *, limit: int) -> Sequence[Order]:
        """Return the chat's latest orders that reached a checkout, newest first."""
        stmt = (
            select(ORDERS)
            .where(ORDER.customer_id == customer_of(key), ORDER.checkout_session_id.is_not(None))
            .order_by(ORDER.created_at.desc(), ORDER.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as db:
            rows = (await db.execute(stmt)).all()
        return [order_of(row) for row in rows]

    async def day_stats(self, *, start: datetime, end: datetime) -> OrderStats:
        """Count the orders created in [start, end) by outcome, and those still unfinished."""
        state, created = ORDER.state, ORDER.created_at
        by_state = (
            select(state, func.count(), func.sum(ORDER.amount_cents))
            .where(created >= start, created < end)
            .group_by(state)
        )
        open_now = select(func.count()).where(state.in_([s.value for s in _OPEN_STATES]))
        async with self.engine.connect() as db:
            rows = {row[0]: (row[1], row[2] or 0) for row in (await db.execute(by_state)).all()}
            pending = (await db.execute(open_now)).scalar_one()
        return OrderStats.of(rows, pending=pending)

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
        """Change state only from one of ``from_``, recording ``event_id`` in the same commit."""
        return await self._driver.run(_move(order_id, Move(from_, to, changes), at, event_id))

    async def decide(
        self,
        order_id: str,
        choose: Callable[[Order], Move | None],
        *,
        at: datetime,
        event_id: str | None = None,
    ) -> Order | None:
        """Read the order and make the move ``choose`` picks, in one write transaction (the
        payment webhook's: a read before it would be a transaction of its own)."""
        moved = await self._driver.run(_decide(order_id, choose, at, event_id))
        return moved or None  # False: _move's Rollback (the event known, or the order moved)

    async def unfinished(self, *, now: datetime, stale_before: datetime) -> Sequence[Order]:
        """Return the orders a worker must push on, oldest first, at most 500 per pass."""
        stmt = (
            select(ORDERS)
            .where(_needs_work(now=now, stale_before=stale_before))
            .order_by(ORDER.created_at, ORDER.id)
            .limit(UNFINISHED_LIMIT)
        )
        async with self.engine.connect() as db:
            rows = (await db.execute(stmt)).all()
        return [order_of(row) for row in rows]


_OPEN_STATES = frozenset({
    OrderState.AWAITING_PAYMENT, OrderState.PAID, OrderState.TOPPING_UP,
    OrderState.TOPUP_UNKNOWN, OrderState.HELD,
})  # fmt: skip
_FAILED_STATES = frozenset({OrderState.TOPUP_FAILED, OrderState.REFUNDED, OrderState.FLAGGED})


@dataclass(frozen=True)
class OrderStats:
    """A day's orders for the operators: created, completed and sold, failed; open right now."""

    orders: int
    completed: int
    sales_cents: int
    failures: int
    pending: int

    @classmethod
    def of(cls, by_state: dict[str, tuple[int, int]], *, pending: int) -> OrderStats:
        """Sum per-state (count, amount) pairs into the figures shown."""
        completed, sales = by_state.get(OrderState.COMPLETED.value, (0, 0))
        failures = sum(by_state.get(s.value, (0, 0))[0] for s in _FAILED_STATES)
        total = sum(count for count, _ in by_state.values())
        return cls(total, completed, sales, failures, pending)


def _add(order: Order) -> Work[None]:
    customer_id = yield from upsert_customer(order.key, at=order.created_at)
    yield _INSERT_ORDER, _order_row(order, customer_id).model_dump()
    yield from _add_event(order.id, order.state, at=order.created_at, cause=None)


def _get(order_id: str) -> Work[Order | None]:
    rows = (yield _ORDER, {"order_id": order_id}).rows
    return order_of(rows[0]) if rows else None


def _decide(
    order_id: str, choose: Callable[[Order], Move | None], at: datetime, event_id: str | None
) -> Work[Order | None]:
    order = yield from _get(order_id)
    move = choose(order) if order is not None else None
    if order is None or move is None:
        return None
    if not (yield from _move(order_id, move, at, event_id, known=True)):
        return None
    return move.applied_to(order)


def _move(
    order_id: str, move: Move, at: datetime, event_id: str | None, *, known: bool = False
) -> Work[bool]:
    """``known``: the order was read in this transaction already (it exists)."""
    if event_id is not None and not (yield from _record_event(event_id, order_id, at, known)):
        return False
    if not (yield from make_move(order_id, move, at=at, cause=event_id)):
        raise Rollback(False)  # the event stays unrecorded, so a retry can still apply it
    return True


def make_move(
    order_id: str, move: Move, *, at: datetime, cause: str | None = None, told: bool = False
) -> Work[bool]:
    """The move's conditional UPDATE and its timeline, inside the caller's transaction; False
    (nothing written) when the order is in none of the move's states. ``told``: the state it
    reaches is told to the customer in this transaction too (``TOLD``, in the same UPDATE)."""
    statement, values = _moving(move.from_, move.to, move.changes, told=told)
    moved = yield statement, {"order_id": order_id, "at": at, **values}
    if moved.rowcount != 1:
        return False
    cause = cause or move.changes.failure  # the first state reached carries it
    reached = [move.via] if move.via is not None else []
    if move.from_ != {move.to}:  # a change of state, not of details (a checkout attached)
        reached.append(move.to)
    if len(reached) == 2:
        via, to = reached
        both = {"state_0": via.value, "cause_0": cause, "state_1": to.value, "cause_1": None}
        yield _INSERT_TWO_EVENTS, {"order_id": order_id, "at": at, **both}
    elif reached:
        yield from _add_event(order_id, reached[0], at=at, cause=cause)
    return True


def _record_event(event_id: str, order_id: str, at: datetime, known: bool) -> Work[bool]:
    """Mark the webhook event processed; False (and nothing changed) if it already was, or if
    there is no such order."""
    recorded = False
    if known or (yield _EXISTS, {"order_id": order_id}).rows:
        keys, new = {"event_id": event_id}, {"order_id": order_id, "processed_at": at}
        recorded = bool((yield from put(ProcessedEventRow, keys, {}, new=new)).rowcount)
    if not recorded:
        logger.info("event %s not recorded: already processed, or no order=%s", event_id, order_id)
    return recorded


def _add_event(order_id: str, state: OrderState, *, at: datetime, cause: str | None) -> Work[None]:
    """Note the state the order reached on its timeline, in the transaction that moved it."""
    yield _INSERT_EVENT, {"order_id": order_id, "state": state.value, "cause": cause, "at": at}


def _moving(
    from_: frozenset[OrderState], to: OrderState, changes: OrderChanges, *, told: bool = False
) -> tuple[Statement, dict[str, Any]]:
    """UPDATE the order to ``to`` only while it is in one of ``from_``; None changes are skipped."""
    given = {
        "payment_ref": changes.payment_ref,
        "operation_id": changes.operation_id,
        "failure": changes.failure,
        "attempts": changes.attempts,
        "next_attempt_at": changes.next_attempt_at,
        "refund_after": changes.refund_after,
        **_checkout_columns(changes.checkout),
        "notified_state": to.value if told else None,
    }
    values = {name: value for name, value in given.items() if value is not None}
    return _move_statement(from_, to, tuple(values)), prefixed(values)


@cache
def _move_statement(
    from_: frozenset[OrderState], to: OrderState, columns: tuple[str, ...]
) -> Statement:
    values = set_columns(ORDERS, columns)
    if "refund_after" in values:  # the first hold's deadline stands
        values["refund_after"] = func.coalesce(ORDER.refund_after, values["refund_after"])
    states = sorted(state.value for state in from_)
    return Statement(
        update(ORDERS)
        .where(ORDER.id == bindparam("order_id"), or_(false(), *(ORDER.state == s for s in states)))
        .values(state=to.value, updated_at=bindparam("at"), **values)
    )


def _needs_work(*, now: datetime, stale_before: datetime) -> ColumnElement[bool]:
    """Orders to push on: paid, stuck mid top-up, failed, held, with a lapsed link, or untold."""
    state, s = ORDER.state, OrderState
    due = or_(ORDER.next_attempt_at.is_(None), ORDER.next_attempt_at <= now)
    return or_(
        and_(state == s.PAID.value, due),
        state.in_([s.TOPUP_UNKNOWN.value, s.TOPUP_FAILED.value]),
        and_(state == s.HELD.value, or_(due, ORDER.refund_after <= now)),
        and_(state == s.TOPPING_UP.value, ORDER.updated_at < stale_before),
        and_(state == s.AWAITING_PAYMENT.value, ORDER.checkout_expires_at < now),
        and_(
            state.in_([settled.value for settled in SETTLED_STATES]),
            ORDER.notified_state.is_distinct_from(state),
        ),
    )


# ---------------------------------------------------------------- rows <-> core types


def _order_row(order: Order, customer_id: int) -> OrderRow:
    return OrderRow(
        id=order.id,
        customer_id=customer_id,
        channel=order.key.channel.value,
        chat_id=order.key.chat_id,
        state=order.state.value,
        payment_ref=order.payment_ref,
        operation_id=order.operation_id,
        failure=order.failure,
        created_at=order.created_at,
        updated_at=order.created_at,
        **_purchase_columns(order.purchase),
        **_checkout_columns(order.checkout),
    )


def _purchase_columns(purchase: Purchase) -> dict[str, Any]:
    line, product = purchase.line, purchase.product
    return {
        "msisdn": line.msisdn,
        "msisdn_hash": line.msisdn,
        "owner_name": line.owner_name,
        "doc_type": line.doc_type.value,
        "doc_number": line.doc_number,
        "product_code": product.code,
        "product_kind": product.kind.value,
        "product_name": product.name,
        "product_details": product.details,
        "validity_days": product.validity_days,
        "operator_id": product.operator_id,
        "face_cents": product.face_cents,
        "amount_cents": product.price_cents,
    }


def _checkout_columns(checkout: Checkout | None) -> dict[str, Any]:
    if checkout is None:
        return {}
    return {
        "checkout_session_id": checkout.session_id,
        "checkout_url": checkout.url,
        "checkout_expires_at": checkout.expires_at,
    }


def order_of(row: Any) -> Order:
    return Order(
        id=row.id,
        key=ChatKey(Channel(row.channel), row.chat_id),
        purchase=purchase_of(row),
        state=OrderState(row.state),
        created_at=row.created_at,
        checkout=_checkout(row),
        payment_ref=row.payment_ref,
        operation_id=row.operation_id,
        failure=row.failure,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        refund_after=row.refund_after,
    )


def purchase_of(row: Any) -> Purchase:
    """The purchase an order row (or any object with its columns as attributes) holds."""
    product = Product(
        code=row.product_code,
        kind=ProductKind(row.product_kind),
        name=row.product_name,
        price_cents=row.amount_cents,
        validity_days=row.validity_days,
        details=row.product_details,
        operator_id=row.operator_id,
        face_cents=row.face_cents,
    )
    return Purchase(line_of(row), product)


def _checkout(row: Any) -> Checkout | None:
    session_id, url, expires_at = row.checkout_session_id, row.checkout_url, row.checkout_expires_at
    if session_id is None or url is None or expires_at is None:
        return None
    return Checkout(session_id, url, expires_at)


# The notice of the order's current state, told: once (the chat's save of the notice runs it).
TOLD = Statement(
    update(ORDERS)
    .where(
        ORDER.id == bindparam("order_id"),
        ORDER.state == bindparam("told"),
        ORDER.notified_state.is_distinct_from(bindparam("told")),
    )
    .values(notified_state=bindparam("told"))
)
