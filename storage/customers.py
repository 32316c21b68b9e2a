"""Customers: the row every chat has, found by its keyed hash, its reachability and saved lines.

``SqlContacts`` is the ``Contacts`` port (inbound dedupe and who may be reached); the helpers are
shared by the other storage modules that write a customer's rows in their own transactions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.model import ChatKey, DocType, Line
from conversations.ports import Contact
from storage.driver import Driver, Statement, Work, prefixed, set_columns
from storage.models import CustomerRow, InboundMessageRow, SavedLineRow, table_of
from storage.upserts import put


@dataclass
class SqlContacts:
    """Inbound message dedupe and each customer's reachability (implements ``Contacts``)."""

    engine: AsyncEngine

    def __post_init__(self) -> None:
        self._driver = Driver(self.engine)

    async def first_delivery(self, key: ChatKey, message_id: str, *, at: datetime) -> bool:
        """Record the inbound message id; False, changing nothing, if it was seen before."""
        return await self._driver.run(delivered(key, message_id, at=at))

    async def contact(self, key: ChatKey) -> Contact:
        """How the customer may be reached; an unknown chat has never written."""
        return await self._driver.run(contact_of(key), write=False)

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
        await self._driver.run(upsert_customer(key, at=at, **values))


def contact_of(key: ChatKey) -> Work[Contact]:
    """How the customer may be reached, as a step of a transaction (the outbox's take)."""
    found = (yield _CONTACT, chat_params(key)).rows
    if not found:
        return Contact()
    last_inbound_at, unreachable_at, opted_out_at = found[0]
    return Contact(last_inbound_at, unreachable_at is not None, opted_out_at is not None)


def upsert_customer(key: ChatKey, *, at: datetime, **also: Any) -> Work[int]:
    """Create the chat's customer if missing, mark it seen at ``at``, and return its id.

    An UPDATE first: the customer is there for nearly every message, and the INSERT would
    encrypt the chat id for nothing (a Fernet token per statement, bench/)."""
    values = {"last_seen_at": at, **also}
    chat = {"w_channel": key.channel.value, "w_chat_hash": key.chat_id}
    found = (yield _seen(tuple(values)), {**chat, **prefixed(values)}).rows
    if found:
        return int(found[0][0])
    keys = {"channel": key.channel.value, "chat_hash": key.chat_id}
    new = {"chat_id": key.chat_id, "created_at": at}
    result = yield from put(CustomerRow, keys, values, new=new, returning="id")
    return int(result.rows[0][0])


@cache
def _seen(columns: tuple[str, ...]) -> Statement:
    customer = table_of(CustomerRow).c
    return Statement(
        update(table_of(CustomerRow))
        .where(
            customer.channel == bindparam("w_channel"),
            customer.chat_hash == bindparam("w_chat_hash"),
        )
        .values(set_columns(table_of(CustomerRow), columns))
        .returning(customer.id)
    )


def delivered(key: ChatKey, message_id: str, *, at: datetime) -> Work[bool]:
    """Record an inbound message id and that the chat wrote at ``at`` (so it is reachable again);
    False, with nothing written, when the id was seen before."""
    heard = yield from inbound(key, message_id, at=at)
    if heard:
        yield from upsert_customer(key, at=at, **heard)
    return bool(heard)


def inbound(key: ChatKey, message_id: str, *, at: datetime) -> Work[dict[str, Any]]:
    """Record an inbound message id; the customer's columns its first delivery sets (the chat
    wrote, so it is reachable again), none when the id was seen before."""
    keys = {"channel": key.channel.value, "message_id": message_id}
    if not (yield from put(InboundMessageRow, keys, {}, new={"received_at": at})).rowcount:
        return {}
    return {"last_inbound_at": at, "unreachable_at": None}


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
_CONTACT = Statement(of_chat(_C.last_inbound_at, _C.unreachable_at, _C.opted_out_at))
SAVED_LINES = table_of(SavedLineRow)
_L = SAVED_LINES.c
SAVED_LINE = (_L.msisdn, _L.owner_name, _L.doc_type, _L.doc_number)  # a Line's fields, in order
NEWEST_LINE_FIRST = (_L.updated_at.desc(), _L.id.desc())
_SAVED_LINES = Statement(
    select(*SAVED_LINE)
    .where(_L.customer_id == bindparam("customer_id"))
    .order_by(*NEWEST_LINE_FIRST)
)


def saved_lines(customer_id: int | None) -> Work[tuple[Line, ...]]:
    """The customer's lines, the most recently given first."""
    return lines_of((yield _SAVED_LINES, {"customer_id": customer_id}).rows)


def lines_of(rows: Iterable[Sequence[Any]]) -> tuple[Line, ...]:
    """The lines of rows of ``SAVED_LINE``'s columns; a row of NULLs (no line, from an outer
    join) is none."""
    return tuple(
        Line(msisdn, owner, DocType(doc), number)
        for msisdn, owner, doc, number in rows
        if msisdn is not None
    )


def line_of(row: Any) -> Line:
    return Line(row.msisdn, row.owner_name, DocType(row.doc_type), row.doc_number)
