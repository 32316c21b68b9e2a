"""Telegram updates a webhook accepted and nobody has handled yet: durable, once each, in order.

The webhook stores an update here before it answers Telegram, so an accepted update survives a
crash, and whichever replica holds the chat's lock takes the chat's updates by ``update_id``
(Telegram numbers them in order), wherever each one arrived. Keeping an update also records its
delivery, so a repeat is dropped here, before it is kept, even after the first one was handled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.model import Channel, ChatKey
from storage.catalogue import STAMP
from storage.chat_reads import chat_state
from storage.customers import chat_params, delivered
from storage.driver import Driver, Statement, Work, read_ahead
from storage.models import InboundMessageRow, PendingUpdateRow, table_of
from storage.upserts import put

_TABLE = table_of(PendingUpdateRow)
# The chat's oldest kept update, taken out (built once: it runs for every update).
_TAKE = Statement(
    delete(_TABLE)
    .where(
        _TABLE.c.update_id
        == select(func.min(_TABLE.c.update_id))
        .where(_TABLE.c.chat_hash == bindparam("chat_hash"))
        .scalar_subquery()
    )
    .returning(_TABLE.c.body)
)
_MORE = Statement(
    select(_TABLE.c.update_id).where(_TABLE.c.chat_hash == bindparam("chat_hash")).limit(1)
)
_DROP = Statement(delete(_TABLE).where(_TABLE.c.update_id == bindparam("update_id")))
_INBOUND = table_of(InboundMessageRow).c
# Both questions, asked before every update is handled.
_QUESTIONS = (
    exists()
    .where(
        _INBOUND.channel == Channel.TELEGRAM.value, _INBOUND.message_id == bindparam("message_id")
    )
    .label("delivered"),
    exists().where(_TABLE.c.chat_hash == bindparam("kept_hash")).label("waiting"),
)
_SEEN = Statement(select(*_QUESTIONS))
# With the rows the update's step reads next, the catalogue's stamp last as there: one round trip
# for both (a new chat has no rows: then the questions alone).
_SEEN_AND_CHAT = Statement(chat_state(*_QUESTIONS, *STAMP))


@dataclass(frozen=True)
class Seen:
    """What the database knows of an update arriving: delivered before; the chat has updates
    kept (older ones, which go first)."""

    delivered: bool
    waiting: bool


@dataclass
class SqlPendingUpdates:
    engine: AsyncEngine

    def __post_init__(self) -> None:
        self._driver = Driver(self.engine)

    async def add(self, key: ChatKey, update_id: int, body: str, *, at: datetime) -> bool:
        """Keep the update and record its delivery (as ``Contacts.first_delivery`` does), in one
        transaction; False, changing nothing, when it was delivered before (a repeat)."""
        return await self._driver.run(_add(key, update_id, body, at=at))

    async def take(self, key: ChatKey) -> tuple[str | None, bool]:
        """Take the chat's oldest kept update out, as its JSON body, and say whether the chat has
        more kept: one transaction, so the drain needs no extra one to find the inbox empty.

        It leaves before it is handled: a crash while handling it loses that one update (the
        customer repeats it) rather than handling it twice, which could open a second checkout.
        """
        return await self._driver.run(_take(key))

    async def seen(self, key: ChatKey, update_id: int) -> Seen:
        """Whether the update was delivered before, and whether its chat has updates kept.

        Read with the chat's rows: when neither, the update is handled next, and its step's
        load takes them instead of reading them again (``driver.read_ahead``)."""
        seen, rows = await self._driver.run(_seen(key, update_id), write=False)
        if not (seen.delivered or seen.waiting):
            read_ahead(key, rows)  # none: a new chat
        return seen

    async def chats(self, *, kept_before: datetime | None = None) -> list[ChatKey]:
        """Every chat with updates still kept (left by a crash, or by a replica that stopped);
        with ``kept_before``, only those with an update kept before then."""
        stmt = select(_TABLE.c.chat_id, _TABLE.c.chat_hash)
        if kept_before is not None:
            stmt = stmt.where(_TABLE.c.received_at < kept_before)
        async with self.engine.connect() as db:
            rows = (await db.execute(stmt)).all()
        by_hash = {row.chat_hash: row.chat_id for row in rows}
        return [ChatKey(Channel.TELEGRAM, chat_id) for chat_id in by_hash.values()]


def _add(key: ChatKey, update_id: int, body: str, *, at: datetime) -> Work[bool]:
    if not (yield from delivered(key, str(update_id), at=at)):
        return False
    kept = {"chat_id": key.chat_id, "chat_hash": key.chat_id, "body": body, "received_at": at}
    yield from put(PendingUpdateRow, {"update_id": update_id}, {}, new=kept)
    return True


def _take(key: ChatKey) -> Work[tuple[str | None, bool]]:
    chat = {"chat_hash": key.chat_id}
    taken = (yield _TAKE, chat).rows
    if not taken:
        return None, False
    return taken[0][0], bool((yield _MORE, chat).rows)


def _seen(key: ChatKey, update_id: int) -> Work[tuple[Seen, list[Any]]]:
    params = {"message_id": str(update_id), "kept_hash": key.chat_id, **chat_params(key)}
    rows = (yield _SEEN_AND_CHAT, params).rows
    answers = rows[0] if rows else (yield _SEEN, params).rows[0]
    return Seen(bool(answers.delivered), bool(answers.waiting)), rows


def answered(key: ChatKey, delivery: str) -> Work[None]:
    """A Telegram update answered in its webhook's request: a copy of it kept meanwhile (Telegram
    repeated it to another replica while the first was under way) is dropped, not handled again.
    Only needed when the update's delivery was recorded before the answer's: keeping a copy
    records it, in the same transaction."""
    if key.channel is Channel.TELEGRAM:
        yield _DROP, {"update_id": int(delivery)}
