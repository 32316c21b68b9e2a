"""The outbox: every message that matters, kept from the transaction that produced it until sent.

``put_outgoing`` writes messages on the caller's connection, so a chat's new state and its
replies commit together (``SqlConversationStore.save``). A message id already in is left as it
is: an order notice put in twice (a crash between putting it and marking the order told) is
sent once. The reply is stored encrypted: it may carry a name, a line or a payment link; a
settled message is kept ``KEPT`` (late delivery reports still find it), then pruned.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from conversations.messages import Link, Option, Reply
from conversations.model import Channel, ChatKey
from conversations.ports import Outgoing
from storage.models import OutboxRow, table_of

PENDING, SENDING, WAITING, SENT, REFUSED = "pending", "sending", "waiting", "sent", "refused"
VENDOR_STATES = frozenset({"delivered", "read", "failed", "undelivered"})
KEPT = timedelta(days=7)
_TABLE = table_of(OutboxRow)
_C = _TABLE.c


def dump_reply(reply: Reply) -> str:
    return json.dumps(asdict(reply), ensure_ascii=False)


def load_reply(text: str) -> Reply:
    fields: dict[str, Any] = json.loads(text)
    link = fields.pop("link", None)
    options = tuple(Option(**option) for option in fields.pop("options", ()))
    return Reply(**fields, options=options, link=Link(**link) if link else None)


async def put_outgoing(db: AsyncConnection, outgoing: Sequence[Outgoing], *, at: datetime) -> None:
    """Insert the messages, due now, on ``db`` (the caller commits); known ids change nothing."""
    if not outgoing:
        return
    insert: sqlite.Insert | postgresql.Insert
    insert = sqlite.insert(_TABLE) if db.dialect.name == "sqlite" else postgresql.insert(_TABLE)
    stmt = insert.on_conflict_do_nothing(index_elements=["message_id"])
    rows = [
        {
            "message_id": message.id, "channel": message.key.channel.value,
            "chat_id": message.key.chat_id, "chat_hash": message.key.chat_id,
            "reply": dump_reply(message.reply), "state": PENDING, "attempts": 0,
            "next_attempt_at": at, "created_at": at, "updated_at": at,
        }
        for message in outgoing
    ]  # fmt: skip
    await db.execute(stmt, rows)


def _takeable(*, customer_wrote: bool) -> ColumnElement[bool]:
    """Pending, left by a sender that crashed, or (when the customer wrote) waiting for them."""
    states = [PENDING, WAITING] if customer_wrote else [PENDING]
    abandoned = and_(_C.state == SENDING, _C.next_attempt_at <= bindparam("now"))
    return or_(_C.state.in_(states), abandoned)


_DUE = {
    wrote: select(_C.message_id, _C.channel, _C.chat_id, _C.reply, _C.attempts)
    .where(_C.chat_hash == bindparam("chat_hash"), _takeable(customer_wrote=wrote))
    .order_by(_C.seq)
    for wrote in (False, True)
}
_CLAIM = (
    update(_TABLE)
    .where(_C.message_id == bindparam("id"), _takeable(customer_wrote=True))
    .values(state=SENDING, next_attempt_at=bindparam("until"))
)


@dataclass
class SqlOutbox:
    engine: AsyncEngine

    async def add(self, outgoing: Sequence[Outgoing], *, at: datetime) -> None:
        async with self.engine.connect() as db:
            await put_outgoing(db, outgoing, at=at)
            await db.commit()

    async def due(self, key: ChatKey, *, customer_wrote: bool, now: datetime) -> Sequence[Outgoing]:
        params = {"chat_hash": key.chat_id, "now": now}
        async with self.engine.connect() as db:
            rows = (await db.execute(_DUE[customer_wrote], params)).all()
        return [_outgoing(row) for row in rows]

    async def claim(self, message_id: str, *, until: datetime, now: datetime) -> bool:
        async with self.engine.connect() as db:
            claimed = await db.execute(_CLAIM, {"id": message_id, "until": until, "now": now})
            await db.commit()
        return bool(claimed.rowcount)

    async def chats_due(self, *, now: datetime) -> Sequence[ChatKey]:
        stmt = (
            select(_C.channel, _C.chat_id)
            .where(_C.state.in_([PENDING, SENDING]), _C.next_attempt_at <= now)
            .order_by(_C.seq)
            .limit(500)
        )
        async with self.engine.connect() as db:
            rows = (await db.execute(stmt)).all()
        return list(dict.fromkeys(ChatKey(Channel(row.channel), row.chat_id) for row in rows))

    async def sent(self, message_id: str, *, vendor_id: str | None, at: datetime) -> None:
        await self._set(message_id, state=SENT, vendor_id=vendor_id, next_attempt_at=None, at=at)

    async def retry(self, message_id: str, *, attempts: int, next_at: datetime) -> None:
        await self._set(message_id, state=PENDING, attempts=attempts, next_attempt_at=next_at)

    async def wait(self, message_id: str, *, at: datetime) -> None:
        await self._set(message_id, state=WAITING, next_attempt_at=None, at=at)

    async def give_up(self, message_id: str, *, reason: str, at: datetime) -> None:
        await self._set(message_id, state=REFUSED, error=reason, next_attempt_at=None, at=at)

    async def reported(
        self, vendor_id: str, status: str, *, error: str | None, at: datetime
    ) -> Outgoing | None:
        """Record the vendor's report on a sent message; the message, if it is ours."""
        stmt = (
            update(_TABLE)
            .where(_C.vendor_id == vendor_id, _C.state.in_([SENT, *VENDOR_STATES]))
            .values(state=status, error=error, updated_at=at)
            .returning(_C.message_id, _C.channel, _C.chat_id, _C.reply, _C.attempts)
        )
        async with self.engine.connect() as db:
            row = (await db.execute(stmt)).first()
            await db.commit()
        return _outgoing(row) if row else None

    async def prune(self, *, before: datetime) -> int:
        """Delete messages settled before ``before`` (sent, reported or refused): they hold
        what the customer was told. Pending and waiting ones stay, whatever their age."""
        settled = [SENT, REFUSED, *VENDOR_STATES]
        stmt = delete(_TABLE).where(_C.state.in_(settled), _C.updated_at < before)
        async with self.engine.connect() as db:
            pruned = (await db.execute(stmt)).rowcount
            await db.commit()
        return pruned

    async def _set(self, message_id: str, *, at: datetime | None = None, **values: Any) -> None:
        if at is not None:
            values["updated_at"] = at
        stmt = update(_TABLE).where(_C.message_id == message_id).values(**values)
        async with self.engine.connect() as db:
            await db.execute(stmt)
            await db.commit()


def _outgoing(row: Any) -> Outgoing:
    key = ChatKey(Channel(row.channel), row.chat_id)
    return Outgoing(row.message_id, key, load_reply(row.reply), row.attempts)
