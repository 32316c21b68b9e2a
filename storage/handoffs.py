"""The chats handed to a person and their messages: the operators' handoff inbox.

A chat waits for a person while its conversation is at ``Step.HANDOFF``; the step lives inside the
encrypted conversation state, so only the chats that ever asked for a person (they have notes) are
opened and read. What the inbox shows of a chat starts at its latest message asking for a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conversations.model import Channel, ChatKey
from conversations.ports import Sender
from conversations.session import Profile, Step, load_session
from storage.customers import customer_of, upsert_customer
from storage.driver import within
from storage.models import ConversationRow, CustomerRow, HandoffNoteRow, table_of

_NOTES = table_of(HandoffNoteRow)
_N = _NOTES.c
_CUSTOMERS, _CONVERSATIONS = table_of(CustomerRow), table_of(ConversationRow)
_CUSTOMER, _CONVERSATION = _CUSTOMERS.c, _CONVERSATIONS.c


@dataclass(frozen=True)
class Note:
    sender: Sender
    body: str
    at: datetime


@dataclass(frozen=True)
class Waiting:
    """A chat waiting for a person: since when, and its messages since it asked."""

    customer_id: int
    key: ChatKey
    since: datetime
    notes: tuple[Note, ...]


@dataclass
class SqlHandoffNotes:
    """Implements ``HandoffNotes``; reads the inbox for the console."""

    engine: AsyncEngine

    async def keep(
        self, key: ChatKey, body: str, *, sender: Sender, at: datetime, opens: bool = False
    ) -> None:
        async with self.engine.connect() as db:
            if sender is Sender.CUSTOMER:  # they wrote: the chat may be new, and it was seen
                customer_id: int | None = await within(db, upsert_customer(key, at=at))
            else:
                customer_id = (await db.execute(select(customer_of(key)))).scalar_one_or_none()
            if customer_id is None:
                raise LookupError("no such chat")
            values = {"sender": sender.value, "opens": opens, "body": body, "at": at}
            await db.execute(insert(_NOTES).values(customer_id=customer_id, **values))
            await db.commit()

    async def waiting(self) -> list[Waiting]:
        """The chats waiting for a person, the longest waiting first."""
        opened = (
            select(_N.customer_id, func.max(_N.id).label("first"))
            .where(_N.opens)
            .group_by(_N.customer_id)
            .subquery()
        )
        chats = select(
            opened.c.customer_id, opened.c.first, _CUSTOMER.channel, _CUSTOMER.chat_id,
            _CONVERSATION.state,
        ).join(_CUSTOMERS, _CUSTOMER.id == opened.c.customer_id).join(
            _CONVERSATIONS, _CONVERSATION.customer_id == opened.c.customer_id
        )  # fmt: skip
        async with self.engine.connect() as db:
            found = []
            for row in (await db.execute(chats)).all():
                if load_session(row.state, Profile()).step is Step.HANDOFF:
                    key = ChatKey(Channel(row.channel), row.chat_id)
                    notes = await _notes(db, row.customer_id, since=row.first)
                    found.append(Waiting(row.customer_id, key, notes[0].at, notes))
        return sorted(found, key=lambda chat: chat.since)

    async def chat(self, customer_id: int) -> ChatKey | None:
        """The chat of a customer shown in the inbox (the console's forms name it by id)."""
        stmt = select(_CUSTOMER.channel, _CUSTOMER.chat_id).where(_CUSTOMER.id == customer_id)
        async with self.engine.connect() as db:
            row = (await db.execute(stmt)).first()
        return None if row is None else ChatKey(Channel(row.channel), row.chat_id)


async def _notes(db: AsyncConnection, customer_id: int, *, since: int) -> tuple[Note, ...]:
    stmt = (
        select(_N.sender, _N.body, _N.at)
        .where(_N.customer_id == customer_id, _N.id >= since)
        .order_by(_N.id)
    )
    return tuple(Note(Sender(r.sender), r.body, r.at) for r in (await db.execute(stmt)).all())
