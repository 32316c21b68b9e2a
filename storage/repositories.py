"""SQL implementations of the core's storage ports, and the mapping between rows and core types.

``SqlConversationStore`` is the ``ConversationStore``; ``SqlOrders`` is both ``Orders`` and
``OrderWork``. Each method is one short transaction on a connection of its own, in Core
statements: no ORM session, whose bookkeeping was a fifth of the database work of an update
(bench/). Every order state change is a conditional UPDATE (from the expected states only), so
racing callers cannot both win. Upserts use ``INSERT … ON CONFLICT``, which SQLite and PostgreSQL
share.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Row,
    Select,
    Table,
    Update,
    UpdateBase,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from conversations.model import (
    SETTLED_STATES,
    Channel,
    ChatKey,
    Checkout,
    DocType,
    Line,
    Order,
    OrderState,
    Product,
    ProductKind,
    Purchase,
)
from conversations.ports import Contact, OrderChanges, Outgoing
from conversations.session import Profile, Session, dump_session, load_session
from storage.models import (
    ConversationRow,
    CustomerRow,
    InboundMessageRow,
    OrderEventRow,
    OrderRow,
    ProcessedEventRow,
    SavedLineRow,
    table_of,
)
from storage.outbox import put_outgoing

logger = logging.getLogger(__name__)

UNFINISHED_LIMIT = 500
_ORDERS = table_of(OrderRow)
_ORDER = _ORDERS.c
_INSERT_ORDER = insert(_ORDERS)
_INSERT_EVENT = insert(table_of(OrderEventRow))


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SqlConversationStore:
    """Chat state per conversation, plus the customer's consent and saved lines."""

    engine: AsyncEngine
    # save() is given no time, so the conversation's updated_at comes from this clock.
    clock: Callable[[], datetime] = _utc_now

    async def load(self, key: ChatKey) -> Session:
        """Return the chat's session with the customer's profile; an unknown chat starts afresh."""
        async with self.engine.connect() as db:
            found = (await db.execute(_CHAT_STATE, _chat(key))).first()
            if found is None:
                return Session()
            profile = Profile(
                consented=found.consent_version is not None,
                promos_asked=found.promos_asked_at is not None,
                lines=await _saved_lines(db, found.id),
                last=_purchase(found) if found.product_code is not None else None,
            )
        return load_session(found.state, profile)

    async def save(
        self, key: ChatKey, session: Session, *, outgoing: Sequence[Outgoing] = ()
    ) -> None:
        """Store the chat's state and its replies to send (the profile is kept by
        record_consent and remember_line)."""
        now = self.clock()
        async with self.engine.connect() as db:
            customer_id = await _customer_id(db, key, at=now)
            values = {"state": dump_session(session), "updated_at": now}
            await _put(db, ConversationRow, {"customer_id": customer_id}, values)
            await put_outgoing(db, outgoing, at=now)
            await db.commit()

    async def record_consent(self, key: ChatKey, *, version: str, at: datetime) -> None:
        """Record that the customer accepted privacy notice ``version`` at ``at``."""
        async with self.engine.connect() as db:
            await _customer_id(db, key, at=at, consent_version=version, consented_at=at)
            await db.commit()

    async def record_promos(self, key: ChatKey, *, opt_in: bool | None, at: datetime) -> None:
        """Record the promo question asked (None) or answered; a yes also lifts a BAJA."""
        values: dict[str, Any] = {"promos_asked_at": at}
        if opt_in is not None:
            values["promos_opt_in_at"] = at if opt_in else None
        if opt_in:
            values["opted_out_at"] = None
        async with self.engine.connect() as db:
            await _customer_id(db, key, at=at, **values)
            await db.commit()

    async def remember_line(self, key: ChatKey, line: Line, *, at: datetime) -> None:
        """Save the line for next time, replacing the owner and document if it was saved before."""
        async with self.engine.connect() as db:
            customer_id = await _customer_id(db, key, at=at)
            values = {
                "owner_name": line.owner_name,
                "doc_type": line.doc_type.value,
                "doc_number": line.doc_number,
                "updated_at": at,
            }
            values["msisdn"] = line.msisdn
            keys = {"customer_id": customer_id, "msisdn_hash": line.msisdn}
            await _put(db, SavedLineRow, keys, values)
            await db.commit()


@dataclass
class SqlOrders:
    """Orders and the worker's view of them (implements ``Orders`` and ``OrderWork``)."""

    engine: AsyncEngine

    async def add(self, order: Order) -> None:
        """Store a new order (and its customer, the first time)."""
        async with self.engine.connect() as db:
            customer_id = await _customer_id(db, order.key, at=order.created_at)
            await db.execute(_INSERT_ORDER, _order_row(order, customer_id).model_dump())
            await _add_event(db, order.id, order.state, at=order.created_at, cause=None)
            await db.commit()

    async def get(self, order_id: str) -> Order | None:
        """Return the order, or None if there is no such order."""
        async with self.engine.connect() as db:
            row = (await db.execute(select(_ORDERS).where(_ORDER.id == order_id))).first()
        return _order(row) if row else None

    async def recent(self, key: ChatKey, *, limit: int) -> Sequence[Order]:
        """Return the chat's latest orders that reached a checkout, newest first."""
        stmt = (
            select(_ORDERS)
            .where(_ORDER.customer_id == customer_of(key), _ORDER.checkout_session_id.is_not(None))
            .order_by(_ORDER.created_at.desc(), _ORDER.id.desc())
            .limit(limit)
        )
        async with self.engine.connect() as db:
            rows = (await db.execute(stmt)).all()
        return [_order(row) for row in rows]

    async def day_stats(self, *, start: datetime, end: datetime) -> OrderStats:
        """Count the orders created in [start, end) by outcome, and those still unfinished."""
        state, created = _ORDER.state, _ORDER.created_at
        by_state = (
            select(state, func.count(), func.sum(_ORDER.amount_cents))
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
        async with self.engine.connect() as db:
            if event_id is not None and not await _record_event(db, event_id, order_id, at):
                return False
            moved = await db.execute(_moving(order_id, from_=from_, to=to, at=at, changes=changes))
            if moved.rowcount != 1:
                await db.rollback()  # the event stays unrecorded, so a retry can still apply it
                return False
            if from_ != {to}:  # a change of state, not of details (a checkout attached)
                await _add_event(db, order_id, to, at=at, cause=event_id or changes.failure)
            await db.commit()
            return True

    async def unfinished(self, *, now: datetime, stale_before: datetime) -> Sequence[Order]:
        """Return the orders a worker must push on, oldest first, at most 500 per pass."""
        stmt = (
            select(_ORDERS)
            .where(_needs_work(now=now, stale_before=stale_before))
            .order_by(_ORDER.created_at, _ORDER.id)
            .limit(UNFINISHED_LIMIT)
        )
        async with self.engine.connect() as db:
            rows = (await db.execute(stmt)).all()
        return [_order(row) for row in rows]

    async def claim_notice(
        self, order_id: str, state: OrderState, *, until: datetime, now: datetime
    ) -> bool:
        """Reserve telling the customer about ``state`` until ``until``; False if told or taken."""
        stmt = (
            update(_ORDERS)
            .where(_ORDER.id == order_id, _ORDER.state == state.value, _untold(now))
            .values(notice_lease_until=until)
        )
        return await self._update(stmt) == 1

    async def notice_sent(self, order_id: str, state: OrderState) -> None:
        """Record that the customer was told about ``state`` and release the claim."""
        stmt = (
            update(_ORDERS)
            .where(_ORDER.id == order_id)
            .values(notified_state=state.value, notice_lease_until=None)
        )
        await self._update(stmt)

    async def _update(self, stmt: Update) -> int:
        async with self.engine.connect() as db:
            changed = (await db.execute(stmt)).rowcount
            await db.commit()
        return changed


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


@dataclass
class SqlContacts:
    """Inbound message dedupe and each customer's reachability (implements ``Contacts``)."""

    engine: AsyncEngine

    async def first_delivery(self, key: ChatKey, message_id: str, *, at: datetime) -> bool:
        """Record the inbound message id; False, changing nothing, if it was seen before."""
        async with self.engine.connect() as db:
            if not await delivered(db, key, message_id, at=at):
                return False
            await db.commit()
        return True

    async def contact(self, key: ChatKey) -> Contact:
        """How the customer may be reached; an unknown chat has never written."""
        async with self.engine.connect() as db:
            row = (await db.execute(_CONTACT, _chat(key))).first()
        if row is None:
            return Contact()
        return Contact(
            row.last_inbound_at, row.unreachable_at is not None, row.opted_out_at is not None
        )

    async def mark(
        self,
        key: ChatKey,
        *,
        at: datetime,
        unreachable: bool | None = None,
        opted_out: bool | None = None,
        promos: bool | None = None,
    ) -> None:
        """Set or clear the unreachable, opted-out and promo opt-in flags given."""
        flags = {
            "unreachable_at": unreachable, "opted_out_at": opted_out, "promos_opt_in_at": promos,
        }  # fmt: skip
        values = {name: at if on else None for name, on in flags.items() if on is not None}
        async with self.engine.connect() as db:
            await _customer_id(db, key, at=at, **values)
            await db.commit()


# ---------------------------------------------------------------- statements


# Writes are built once per shape, with their values bound at execution: building an INSERT …
# ON CONFLICT and its cache key each time cost about as much as running it (bench/, the profile).


@cache
def _upsert(
    dialect: str, table: Table, keys: tuple[str, ...], update: tuple[str, ...], returning: str
) -> UpdateBase:
    """INSERT … ON CONFLICT (``keys``): set the ``update`` columns from the row offered, or, with
    none, do nothing on any conflict; SQLite and PostgreSQL spell it the same way. The columns
    inserted are the parameters it is executed with."""
    stmt: sqlite.Insert | postgresql.Insert
    stmt = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=keys, set_={name: stmt.excluded[name] for name in update}
        )
    else:
        stmt = stmt.on_conflict_do_nothing()
    return stmt.returning(table.c[returning]) if returning else stmt


async def _put(
    db: AsyncConnection,
    model: type[SQLModel],
    keys: dict[str, Any],
    values: dict[str, Any],
    *,
    new: dict[str, Any] | None = None,
    returning: str = "",
) -> CursorResult[Any]:
    """Insert the row (with ``new`` too), or set ``values`` on the row with the same unique
    ``keys``; with no ``values``, a row already there is left as it is."""
    dialect = db.dialect.name
    stmt = _upsert(dialect, table_of(model), tuple(keys), tuple(values), returning)
    return await db.execute(stmt, {**keys, **(new or {}), **values})


async def _customer_id(db: AsyncConnection, key: ChatKey, *, at: datetime, **also: Any) -> int:
    """Create the chat's customer if missing, mark it seen at ``at``, and return its id."""
    keys = {"channel": key.channel.value, "chat_hash": key.chat_id}
    new = {"chat_id": key.chat_id, "created_at": at}
    values = {"last_seen_at": at, **also}
    return int((await _put(db, CustomerRow, keys, values, new=new, returning="id")).scalar_one())


async def delivered(db: AsyncConnection, key: ChatKey, message_id: str, *, at: datetime) -> bool:
    """Record an inbound message id and that the chat wrote at ``at`` (so it is reachable again);
    False, with nothing written, when the id was seen before. The caller commits."""
    keys = {"channel": key.channel.value, "message_id": message_id}
    if not (await _put(db, InboundMessageRow, keys, {}, new={"received_at": at})).rowcount:
        return False
    await _customer_id(db, key, at=at, last_inbound_at=at, unreachable_at=None)
    return True


def customer_of(key: ChatKey) -> Any:
    """The chat's customer id as a scalar subquery (chats are found by their keyed hash)."""
    return _select_customer(key, table_of(CustomerRow).c.id).scalar_subquery()


def _select_customer(key: ChatKey, *columns: Any) -> Select[Any]:
    customer = table_of(CustomerRow).c
    return select(*columns).where(
        customer.channel == key.channel.value, customer.chat_hash == key.chat_id
    )


# The reads of every message are built once, with bound parameters: building a statement and its
# cache key each time was a good part of SQLAlchemy's cost per statement (bench/, the profile).


def _chat(key: ChatKey) -> dict[str, Any]:
    """The parameters of a statement that finds the chat's customer (by its keyed hash)."""
    return {"chat_channel": key.channel.value, "chat_hash": key.chat_id}


def _of_chat(*columns: Any) -> Select[Any]:
    customer = table_of(CustomerRow).c
    return select(*columns).where(
        customer.channel == bindparam("chat_channel"), customer.chat_hash == bindparam("chat_hash")
    )


# The order columns _purchase reads.
_BOUGHT = (
    "msisdn", "owner_name", "doc_type", "doc_number", "product_code", "product_kind",
    "product_name", "product_details", "validity_days", "amount_cents", "operator_id", "face_cents",
)  # fmt: skip


def _chat_state() -> Select[Any]:
    """The chat's customer (id, consent, promo question), its stored state and what its latest
    completed order bought (for "Repetir última recarga"), in one row."""
    customers, conversations = table_of(CustomerRow), table_of(ConversationRow)
    customer, conversation, done = customers.c, conversations.c, _ORDERS.alias("done").c
    latest = (
        select(done.id)
        .where(done.customer_id == customer.id, done.state == OrderState.COMPLETED.value)
        .order_by(done.created_at.desc(), done.id.desc())
        .limit(1)
        .correlate(customers)
        .scalar_subquery()
    )
    stmt = _of_chat(
        customer.id,
        customer.consent_version,
        customer.promos_asked_at,
        conversation.state,
        *(_ORDER[name] for name in _BOUGHT),
    )
    return stmt.select_from(
        customers.outerjoin(conversations, conversation.customer_id == customer.id).outerjoin(
            _ORDERS, _ORDER.id == latest
        )
    )


_CHAT_STATE = _chat_state()
_C = table_of(CustomerRow).c
_CONTACT = _of_chat(_C.last_inbound_at, _C.unreachable_at, _C.opted_out_at)
_L = table_of(SavedLineRow).c
_SAVED_LINES = (
    select(_L.msisdn, _L.owner_name, _L.doc_type, _L.doc_number)
    .where(_L.customer_id == bindparam("customer_id"))
    .order_by(_L.updated_at.desc(), _L.id.desc())
)


async def _saved_lines(db: AsyncConnection, customer_id: int | None) -> tuple[Line, ...]:
    """The customer's lines, the most recently given first."""
    rows = (await db.execute(_SAVED_LINES, {"customer_id": customer_id})).all()
    return tuple(_line(row) for row in rows)


async def _record_event(db: AsyncConnection, event_id: str, order_id: str, at: datetime) -> bool:
    """Mark the webhook event processed; False (and nothing changed) if it already was."""
    keys, new = {"event_id": event_id}, {"order_id": order_id, "processed_at": at}
    try:  # a repeat changes nothing; an unknown order breaks the foreign key
        recorded = (await _put(db, ProcessedEventRow, keys, {}, new=new)).rowcount
    except IntegrityError:
        await db.rollback()
        recorded = 0
    if not recorded:
        logger.info("event %s not recorded: already processed, or no order=%s", event_id, order_id)
    return bool(recorded)


async def _add_event(
    db: AsyncConnection, order_id: str, state: OrderState, *, at: datetime, cause: str | None
) -> None:
    """Note the state the order reached on its timeline, in the transaction that moved it."""
    await db.execute(
        _INSERT_EVENT, {"order_id": order_id, "state": state.value, "cause": cause, "at": at}
    )


def _moving(
    order_id: str,
    *,
    from_: frozenset[OrderState],
    to: OrderState,
    at: datetime,
    changes: OrderChanges,
) -> Update:
    """UPDATE the order to ``to`` only while it is in one of ``from_``; None changes are skipped."""
    given = {
        "payment_ref": changes.payment_ref,
        "operation_id": changes.operation_id,
        "failure": changes.failure,
        "attempts": changes.attempts,
        "next_attempt_at": changes.next_attempt_at,
        **_checkout_columns(changes.checkout),
    }
    values: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    if changes.refund_after is not None:  # the first hold's deadline stands
        values["refund_after"] = func.coalesce(_ORDER.refund_after, changes.refund_after)
    return (
        update(_ORDERS)
        .where(_ORDER.id == order_id, _ORDER.state.in_([s.value for s in from_]))
        .values(state=to.value, updated_at=at, **values)
    )


def _needs_work(*, now: datetime, stale_before: datetime) -> ColumnElement[bool]:
    """Orders to push on: paid, stuck mid top-up, failed, held, with a lapsed link, or untold."""
    state, s = _ORDER.state, OrderState
    due = or_(_ORDER.next_attempt_at.is_(None), _ORDER.next_attempt_at <= now)
    return or_(
        and_(state == s.PAID.value, due),
        state.in_([s.TOPUP_UNKNOWN.value, s.TOPUP_FAILED.value]),
        and_(state == s.HELD.value, or_(due, _ORDER.refund_after <= now)),
        and_(state == s.TOPPING_UP.value, _ORDER.updated_at < stale_before),
        and_(state == s.AWAITING_PAYMENT.value, _ORDER.checkout_expires_at < now),
        and_(state.in_([settled.value for settled in SETTLED_STATES]), _untold(now)),
    )


def _untold(now: datetime) -> ColumnElement[bool]:
    """Nobody has told the customer about the order's current state, nor is telling them now."""
    lease = _ORDER.notice_lease_until
    return and_(
        _ORDER.notified_state.is_distinct_from(_ORDER.state),
        or_(lease.is_(None), lease < now),
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


def _order(row: Row[Any]) -> Order:
    return Order(
        id=row.id,
        key=ChatKey(Channel(row.channel), row.chat_id),
        purchase=_purchase(row),
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


def _purchase(row: Row[Any]) -> Purchase:
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
    return Purchase(_line(row), product)


def _line(row: Row[Any]) -> Line:
    return Line(row.msisdn, row.owner_name, DocType(row.doc_type), row.doc_number)


def _checkout(row: Row[Any]) -> Checkout | None:
    session_id, url, expires_at = row.checkout_session_id, row.checkout_url, row.checkout_expires_at
    if session_id is None or url is None or expires_at is None:
        return None
    return Checkout(session_id, url, expires_at)
