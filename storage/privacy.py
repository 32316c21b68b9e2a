"""SQL side of the privacy duties: access, erasure, retention, abuse counts and the audit log.

Why one module: these are the queries Ley 29733 and the abuse limits need, kept apart from the
order flow's repositories. Erasure deletes saved lines, the conversation, its messages to a
person (handoff notes) and the consent, and anonymises the customer row and its settled orders:
ids, products, amounts, states and times stay for accounting; names, documents, numbers and chat
ids are blanked (the number's keyed hash after the day in which the per-recipient limits count
it). Orders still moving (paid, topping up) keep their data until they settle, so the customer
can still be told and refunded; the retention job erases them later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from cryptography.fernet import InvalidToken
from sqlalchemy import ColumnElement, delete, tuple_, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import column, table
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from conversations.limits import DAY
from conversations.model import ChatKey, OrderState, PersonalData
from storage.crypto import EncryptedColumn, WrongDataKeys, keys_of
from storage.customers import saved_lines
from storage.db import Sessions
from storage.driver import within
from storage.models import (
    AuditRow,
    ConversationRow,
    CustomerRow,
    HandoffNoteRow,
    OrderRow,
    OutboxRow,
    SavedLineRow,
)

logger = logging.getLogger(__name__)

# Orders that will not move again: safe to anonymise.
FINAL_STATES = frozenset(
    {OrderState.COMPLETED, OrderState.REFUNDED, OrderState.EXPIRED, OrderState.CANCELLED}
)
BLANK = ""
_SETTLED = col(OrderRow.state).in_([state.value for state in FINAL_STATES])

# Every encrypted column, for key rotation.
ENCRYPTED_COLUMNS = (
    EncryptedColumn("customers", "id", "chat_id"),
    EncryptedColumn("saved_lines", "id", "msisdn"),
    EncryptedColumn("saved_lines", "id", "owner_name"),
    EncryptedColumn("saved_lines", "id", "doc_number"),
    EncryptedColumn("conversations", "customer_id", "state"),
    EncryptedColumn("orders", "id", "chat_id"),
    EncryptedColumn("orders", "id", "msisdn"),
    EncryptedColumn("orders", "id", "owner_name"),
    EncryptedColumn("orders", "id", "doc_number"),
    EncryptedColumn("audit_log", "id", "actor"),
    EncryptedColumn("pending_updates", "update_id", "chat_id"),
    EncryptedColumn("pending_updates", "update_id", "body"),
    EncryptedColumn("outbox", "seq", "chat_id"),
    EncryptedColumn("outbox", "seq", "reply"),
    EncryptedColumn("handoff_notes", "id", "body"),
)


async def check_keys(engine: AsyncEngine) -> None:
    """Refuse to serve with keys that do not open the stored data (a customer's chat id).

    Fresh keys on a used database (another working folder, a lost keys file) would otherwise
    greet every customer as new and write rows nobody can read later.
    """
    customers = table("customers", column("id"), column("chat_id"), column("chat_hash"))
    async with engine.connect() as connection:
        stmt = select(customers.c.id, customers.c.chat_id, customers.c.chat_hash).limit(1)
        row = (await connection.execute(stmt)).first()
    if row is None:
        return
    keys = keys_of(engine.dialect)
    try:
        opened = keys.decrypt(row.chat_id)
    except InvalidToken:
        raise WrongDataKeys(
            "the data keys do not open this database: set DATA_ENCRYPTION_KEYS and DATA_HASH_KEY,"
            " or DATA_KEYS_PATH to the keys file it was written with"
        ) from None
    hashed = opened or erased_chat(row.id)  # an erased customer keeps only a placeholder hash
    if keys.digest(hashed) != row.chat_hash:
        raise WrongDataKeys("DATA_HASH_KEY is not the one this database was written with")


def erased_chat(customer_id: int) -> str:
    """What an erased customer's chat hash stands for: unique, and nobody's chat."""
    return f"erased:{customer_id}"


@dataclass
class SqlPrivacy:
    """Implements ``Privacy`` (access, erasure); runs retention."""

    sessions: Sessions

    async def personal_data(self, key: ChatKey) -> PersonalData:
        """What is kept about this chat's customer, and only theirs."""
        async with self.sessions() as db:
            customer = await _find_customer(db, key)
            if customer is None:
                return PersonalData()
            lines = await within(await db.connection(), saved_lines(customer.id))
            # Encrypted values cannot be compared in SQL (each token is salted): count here.
            names = select(OrderRow.owner_name).where(OrderRow.customer_id == customer.id)
            count = sum(1 for name in (await db.exec(names)).all() if name != BLANK)
        return PersonalData(customer.consent_version, customer.consented_at, lines, count)

    async def erase(self, key: ChatKey, *, at: datetime) -> None:
        """Erase the chat's personal data (one transaction); an unknown chat has none."""
        async with self.sessions() as db:
            customer = await _find_customer(db, key)
            if customer is None or customer.id is None:
                return
            await _erase(db, customer.id, at=at)
            await db.commit()

    async def erase_inactive(self, *, before: datetime, now: datetime) -> int:
        """Erase every customer not seen since ``before``; return how many were erased.

        Also forgets the numbers' keyed hashes that erasures kept for the day's limits.
        """
        stmt = select(CustomerRow.id, CustomerRow.chat_id).where(
            col(CustomerRow.last_seen_at) < before
        )
        async with self.sessions() as db:
            rows = (await db.exec(stmt)).all()
        ids = [i for i, chat_id in rows if i is not None and chat_id != BLANK]  # not yet erased
        for customer_id in ids:  # one short transaction each: the bot keeps serving
            async with self.sessions() as db:
                await _erase(db, customer_id, at=now)
                await db.commit()
        async with self.sessions() as db:
            # Orders need consent, so an order whose customer has none left was erased.
            erased = select(CustomerRow.id).where(col(CustomerRow.consent_version).is_(None))
            await _forget_numbers(db, col(OrderRow.customer_id).in_(erased), at=now)
            await db.commit()
        logger.info("retention: %d inactive customers erased", len(ids))
        return len(ids)


async def _find_customer(db: AsyncSession, key: ChatKey) -> CustomerRow | None:
    stmt = select(CustomerRow).where(
        CustomerRow.channel == key.channel.value, CustomerRow.chat_hash == key.chat_id
    )
    return (await db.exec(stmt)).first()


async def _erase(db: AsyncSession, customer_id: int, *, at: datetime) -> None:
    """Delete what is only personal, blank what accounting keeps."""
    await db.exec(delete(SavedLineRow).where(col(SavedLineRow.customer_id) == customer_id))
    await db.exec(delete(ConversationRow).where(col(ConversationRow.customer_id) == customer_id))
    await db.exec(delete(HandoffNoteRow).where(col(HandoffNoteRow.customer_id) == customer_id))
    await db.exec(
        update(OrderRow)
        .where(col(OrderRow.customer_id) == customer_id, _SETTLED)
        .values(chat_id=BLANK, msisdn=BLANK, owner_name=BLANK, doc_number=BLANK)
    )
    await _forget_numbers(db, col(OrderRow.customer_id) == customer_id, at=at)
    await db.exec(delete(OutboxRow).where(_outbox_of(customer_id)))  # replies name the line too
    await db.exec(
        update(CustomerRow)
        .where(col(CustomerRow.id) == customer_id)
        .values(
            chat_id=BLANK, chat_hash=erased_chat(customer_id), consent_version=None,
            consented_at=None, last_inbound_at=None, promos_opt_in_at=None, promos_asked_at=None,
        )
    )  # fmt: skip


def _outbox_of(customer_id: int) -> ColumnElement[bool]:
    """The customer's messages in the outbox (found by the chat's keyed hash, compared in SQL)."""
    customer = select(CustomerRow.channel, CustomerRow.chat_hash).where(
        col(CustomerRow.id) == customer_id
    )
    return tuple_(col(OutboxRow.channel), col(OutboxRow.chat_hash)).in_(customer)


async def _forget_numbers(db: AsyncSession, whose: ColumnElement[bool], *, at: datetime) -> None:
    """Blank the number's keyed hash of settled orders the day's per-recipient limit no longer
    counts (erasure keeps it that long, or /borrar would reset the limit)."""
    await db.exec(
        update(OrderRow)
        .where(whose, _SETTLED, col(OrderRow.created_at) < at - DAY)
        .values(msisdn_hash=BLANK)
    )


@dataclass
class SqlAudit:
    """The audit log: one row per admin command, operator action or refused attempt."""

    sessions: Sessions

    async def record(self, *, actor: str, action: str, allowed: bool, at: datetime,
                     target: str | None = None) -> None:  # fmt: skip
        """Append an entry (``target`` must hold no personal data)."""
        async with self.sessions() as db:
            db.add(AuditRow(actor=actor, action=action, target=target, allowed=allowed, at=at))
            await db.commit()

    async def entries(self) -> list[AuditRow]:
        """Every entry, oldest first."""
        async with self.sessions() as db:
            return list((await db.exec(select(AuditRow).order_by(col(AuditRow.id)))).all())
