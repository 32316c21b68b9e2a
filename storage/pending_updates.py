"""Telegram updates a webhook accepted and nobody has handled yet: durable, once each, in order.

The webhook stores an update here before it answers Telegram, so an accepted update survives a
crash, and whichever replica holds the chat's lock takes the chat's updates by ``update_id``
(Telegram numbers them in order), wherever each one arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy import select as sa_select

from conversations.model import Channel, ChatKey
from storage.models import PendingUpdateRow
from storage.repositories import Sessions, _insert, _run

_TABLE = PendingUpdateRow.__table__


@dataclass
class SqlPendingUpdates:
    sessions: Sessions

    async def add(self, key: ChatKey, update_id: int, body: str, *, at: datetime) -> bool:
        """Keep the update; False, changing nothing, when it is already kept (a repeat)."""
        values = {"update_id": update_id, "chat_id": key.chat_id, "chat_hash": key.chat_id}
        async with self.sessions() as db:
            stmt = _insert(db, PendingUpdateRow).values(**values, body=body, received_at=at)
            result = await db.exec(stmt.on_conflict_do_nothing(index_elements=["update_id"]))
            await db.commit()
        return bool(result.rowcount)

    async def next(self, key: ChatKey, *, done: int | None = None) -> tuple[int, str] | None:
        """Forget the handled update ``done``, if given, and return the chat's oldest kept one
        as (update_id, JSON body): one transaction per update handled."""
        stmt = (
            sa_select(_TABLE.c.update_id, _TABLE.c.body)
            .where(_TABLE.c.chat_hash == key.chat_id)
            .order_by(_TABLE.c.update_id)
            .limit(1)
        )
        async with self.sessions() as db:
            if done is not None:
                await db.exec(delete(PendingUpdateRow).where(_TABLE.c.update_id == done))
            row = (await _run(db, stmt)).first()
            await db.commit()
        return (row.update_id, row.body) if row else None

    async def chats(self) -> list[ChatKey]:
        """Every chat with updates still kept (left by a crash, or by a replica that stopped)."""
        stmt = sa_select(_TABLE.c.chat_id, _TABLE.c.chat_hash)
        async with self.sessions() as db:
            rows = (await _run(db, stmt)).all()
        by_hash = {row.chat_hash: row.chat_id for row in rows}
        return [ChatKey(Channel.TELEGRAM, chat_id) for chat_id in by_hash.values()]
