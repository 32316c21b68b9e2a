"""The chat state store: one conversation per chat, with the customer's consent and saved lines.

``SqlConversationStore`` is the ``ConversationStore`` port. A chat's load is one statement (its
customer, state and what its latest completed order bought); its save writes the state and the
replies to send in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.model import ChatKey, Line, OrderState
from conversations.ports import Outgoing
from conversations.session import Profile, Session, dump_session, load_session
from storage.customers import chat_params, of_chat, saved_lines, upsert_customer
from storage.models import ConversationRow, CustomerRow, SavedLineRow, table_of
from storage.orders import BOUGHT, ORDER, ORDERS, purchase_of
from storage.outbox import put_outgoing
from storage.upserts import put


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
            found = (await db.execute(_CHAT_STATE, chat_params(key))).first()
            if found is None:
                return Session()
            profile = Profile(
                consented=found.consent_version is not None,
                promos_asked=found.promos_asked_at is not None,
                lines=await saved_lines(db, found.id),
                last=purchase_of(found) if found.product_code is not None else None,
            )
        return load_session(found.state, profile)

    async def save(
        self, key: ChatKey, session: Session, *, outgoing: Sequence[Outgoing] = ()
    ) -> None:
        """Store the chat's state and its replies to send (the profile is kept by
        record_consent and remember_line)."""
        now = self.clock()
        async with self.engine.connect() as db:
            customer_id = await upsert_customer(db, key, at=now)
            values = {"state": dump_session(session), "updated_at": now}
            await put(db, ConversationRow, {"customer_id": customer_id}, values)
            await put_outgoing(db, outgoing, at=now)
            await db.commit()

    async def record_consent(self, key: ChatKey, *, version: str, at: datetime) -> None:
        """Record that the customer accepted privacy notice ``version`` at ``at``."""
        async with self.engine.connect() as db:
            await upsert_customer(db, key, at=at, consent_version=version, consented_at=at)
            await db.commit()

    async def record_promos(self, key: ChatKey, *, opt_in: bool | None, at: datetime) -> None:
        """Record the promo question asked (None) or answered; a yes also lifts a BAJA."""
        values: dict[str, Any] = {"promos_asked_at": at}
        if opt_in is not None:
            values["promos_opt_in_at"] = at if opt_in else None
        if opt_in:
            values["opted_out_at"] = None
        async with self.engine.connect() as db:
            await upsert_customer(db, key, at=at, **values)
            await db.commit()

    async def remember_line(self, key: ChatKey, line: Line, *, at: datetime) -> None:
        """Save the line for next time, replacing the owner and document if it was saved before."""
        async with self.engine.connect() as db:
            customer_id = await upsert_customer(db, key, at=at)
            values = {
                "owner_name": line.owner_name,
                "doc_type": line.doc_type.value,
                "doc_number": line.doc_number,
                "updated_at": at,
            }
            values["msisdn"] = line.msisdn
            keys = {"customer_id": customer_id, "msisdn_hash": line.msisdn}
            await put(db, SavedLineRow, keys, values)
            await db.commit()


def _chat_state() -> Select[Any]:
    """The chat's customer (id, consent, promo question), its stored state and what its latest
    completed order bought (for "Repetir última recarga"), in one row."""
    customers, conversations = table_of(CustomerRow), table_of(ConversationRow)
    customer, conversation, done = customers.c, conversations.c, ORDERS.alias("done").c
    latest = (
        select(done.id)
        .where(done.customer_id == customer.id, done.state == OrderState.COMPLETED.value)
        .order_by(done.created_at.desc(), done.id.desc())
        .limit(1)
        .correlate(customers)
        .scalar_subquery()
    )
    stmt = of_chat(
        customer.id,
        customer.consent_version,
        customer.promos_asked_at,
        conversation.state,
        *(ORDER[name] for name in BOUGHT),
    )
    return stmt.select_from(
        customers.outerjoin(conversations, conversation.customer_id == customer.id).outerjoin(
            ORDERS, ORDER.id == latest
        )
    )


_CHAT_STATE = _chat_state()
