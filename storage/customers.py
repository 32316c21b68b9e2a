"""Customers: the row every chat has, found by its keyed hash, its reachability and saved lines.

``SqlContacts`` is the ``Contacts`` port (inbound dedupe and who may be reached); the helpers are
shared by the other storage modules that write a customer's rows in their own transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conversations.model import ChatKey, DocType, Line
from conversations.ports import Contact
from storage.models import CustomerRow, InboundMessageRow, SavedLineRow, table_of
from storage.upserts import put


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
            row = (await db.execute(_CONTACT, chat_params(key))).first()
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
            await upsert_customer(db, key, at=at, **values)
            await db.commit()


async def upsert_customer(db: AsyncConnection, key: ChatKey, *, at: datetime, **also: Any) -> int:
    """Create the chat's customer if missing, mark it seen at ``at``, and return its id."""
    keys = {"channel": key.channel.value, "chat_hash": key.chat_id}
    new = {"chat_id": key.chat_id, "created_at": at}
    values = {"last_seen_at": at, **also}
    return int((await put(db, CustomerRow, keys, values, new=new, returning="id")).scalar_one())


async def delivered(db: AsyncConnection, key: ChatKey, message_id: str, *, at: datetime) -> bool:
    """Record an inbound message id and that the chat wrote at ``at`` (so it is reachable again);
    False, with nothing written, when the id was seen before. The caller commits."""
    keys = {"channel": key.channel.value, "message_id": message_id}
    if not (await put(db, InboundMessageRow, keys, {}, new={"received_at": at})).rowcount:
        return False
    await upsert_customer(db, key, at=at, last_inbound_at=at, unreachable_at=None)
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


def chat_params(key: ChatKey) -> dict[str, Any]:
    """The parameters of a statement that finds the chat's customer (by its keyed hash)."""
    return {"chat_channel": key.channel.value, "chat_hash": key.chat_id}


def of_chat(*columns: Any) -> Select[Any]:
    customer = table_of(CustomerRow).c
    return select(*columns).where(
        customer.channel == bindparam("chat_channel"), customer.chat_hash == bindparam("chat_hash")
    )


_C = table_of(CustomerRow).c
_CONTACT = of_chat(_C.last_inbound_at, _C.unreachable_at, _C.opted_out_at)
_L = table_of(SavedLineRow).c
_SAVED_LINES = (
    select(_L.msisdn, _L.owner_name, _L.doc_type, _L.doc_number)
    .where(_L.customer_id == bindparam("customer_id"))
    .order_by(_L.updated_at.desc(), _L.id.desc())
)


async def saved_lines(db: AsyncConnection, customer_id: int | None) -> tuple[Line, ...]:
    """The customer's lines, the most recently given first."""
    rows = (await db.execute(_SAVED_LINES, {"customer_id": customer_id})).all()
    return tuple(line_of(row) for row in rows)


def line_of(row: Row[Any]) -> Line:
    return Line(row.msisdn, row.owner_name, DocType(row.doc_type), row.doc_number)
