"""The outbox: every message that matters, kept from the transaction that produced it until sent.

``put_outgoing`` writes messages in the caller's transaction, so a chat's new state and its
replies commit together, and ``take`` claims what the chat has to send in that same transaction
(``SqlConversationStore.save``; for a chat that owed nothing, ``put_taken`` puts them in
claimed): the common path of a message is one write transaction. A
message id already in is left as it is: an order notice put in twice (a crash between putting
it and marking the order told) is sent once. The reply is stored encrypted: it may carry a name,
a line or a payment link; a settled message is kept ``KEPT`` (late delivery reports still find
it), then pruned.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.messages import Link, Option, Reply
from conversations.model import Channel, ChatKey
from conversations.ports import Claim, Outgoing
from storage.customers import contact_of
from storage.driver import (
    Batched,
    Driver,
    Result,
    Statement,
    Step,
    Work,
    changed,
    prefixed,
    set_columns,
)
from storage.models import OutboxRow, table_of
from storage.upserts import put

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


# A chat's messages in these states are still to go (``storage.chat_reads`` asks if it has any).
OWED = (PENDING, SENDING, WAITING)


def put_outgoing(outgoing: Sequence[Outgoing], *, at: datetime) -> Work[None]:
    """Insert the messages, due now (in the caller's transaction); known ids change nothing."""
    for message in outgoing:
        yield from _put(message, PENDING, at, due=at)


def put_taken(
    key: ChatKey, outgoing: Sequence[Outgoing], claim: Claim, *, at: datetime
) -> Work[list[Outgoing]]:
    """``put_outgoing`` then ``take``, for a chat that owed nothing before: the messages go in
    claimed, and those put in are what is taken (a known id changes nothing and is not taken).
    One statement a message, where the take was one more (``SqlConversationStore.save``)."""
    taken = []
    for message in outgoing:
        put_in = yield from _put(message, SENDING, at, due=claim.until, returning="message_id")
        if put_in.rows:
            taken.append(message)
    return (yield from _with_contact(key, claim, taken))


def _put(
    message: Outgoing, state: str, at: datetime, *, due: datetime, returning: str = ""
) -> Work[Result]:
    new = {
        "channel": message.key.channel.value, "chat_id": message.key.chat_id,
        "chat_hash": message.key.chat_id, "reply": dump_reply(message.reply), "state": state,
        "attempts": 0, "next_attempt_at": due, "created_at": at, "updated_at": at,
    }  # fmt: skip
    keys = {"message_id": message.id}
    return (yield from put(OutboxRow, keys, {}, new=new, returning=returning))


def _takeable(*, customer_wrote: bool) -> ColumnElement[bool]:
    """Pending, left by a sender that crashed, or (when the customer wrote) waiting for them."""
    abandoned = and_(_C.state == SENDING, _C.next_attempt_at <= bindparam("now"))
    waiting = [_C.state == WAITING] if customer_wrote else []
    return or_(_C.state == PENDING, *waiting, abandoned)


_RETURNED = (_C.message_id, _C.channel, _C.chat_id, _C.reply, _C.attempts, _C.seq)
# The chat's messages to send now, claimed by the sender in the same statement.
_TAKE = {
    wrote: Statement(
        update(_TABLE)
        .where(_C.chat_hash == bindparam("chat_hash"), _takeable(customer_wrote=wrote))
        .values(state=SENDING, next_attempt_at=bindparam("until"))
        .returning(*_RETURNED)
    )
    for wrote in (False, True)
}
_CLAIM = Statement(
    update(_TABLE)
    .where(_C.message_id == bindparam("id"), _takeable(customer_wrote=True))
    .values(state=SENDING, next_attempt_at=bindparam("until"))
)
_RELEASE = Statement(
    update(_TABLE)
    .where(_C.message_id == bindparam("id"), _C.state == SENDING)
    .values(state=PENDING, next_attempt_at=bindparam("next_at"))
)


def take(key: ChatKey, claim: Claim) -> Work[list[Outgoing]]:
    """Claim the chat's messages to send now (``Outbox.take``), oldest first."""
    params = {"chat_hash": key.chat_id, "now": claim.now, "until": claim.until}
    rows = (yield _TAKE[claim.customer_wrote], params).rows
    taken = [
        Outgoing(message_id, ChatKey(Channel(channel), chat_id), load_reply(reply), attempts)
        for message_id, channel, chat_id, reply, attempts, _ in sorted(rows, key=lambda r: r[5])
    ]
    return (yield from _with_contact(key, claim, taken))


def _with_contact(key: ChatKey, claim: Claim, taken: list[Outgoing]) -> Work[list[Outgoing]]:
    """For a customer who has not just written (a notice, a retry), how they may be reached,
    read with the messages taken: the messenger must know it, and need not read it in a
    transaction of its own. One who has just written can be (Messenger.send's ``answering``)."""
    if not taken or claim.customer_wrote:
        return taken
    contact = yield from contact_of(key)
    return [replace(message, contact=contact) for message in taken]


@cache
def _set_statement(columns: tuple[str, ...]) -> Statement:
    values = set_columns(_TABLE, columns)
    return Statement(update(_TABLE).where(_C.message_id == bindparam("id")).values(values))


def _setting(message_id: str, **values: Any) -> Step:
    return _set_statement(tuple(values)), {"id": message_id, **prefixed(values)}


def _set(message_id: str, **values: Any) -> Work[None]:
    yield _setting(message_id, **values)


@dataclass
class SqlOutbox:
    engine: AsyncEngine

    def __post_init__(self) -> None:
        self._driver = Driver(self.engine)
        self._sent = Batched(self._driver, _record_sent)

    async def add(self, outgoing: Sequence[Outgoing], *, at: datetime) -> None:
        if outgoing:
            await self._driver.run(put_outgoing(outgoing, at=at))

    async def take(self, key: ChatKey, claim: Claim) -> Sequence[Outgoing]:
        return await self._driver.run(take(key, claim))

    async def claim(self, message_id: str, *, until: datetime, now: datetime) -> bool:
        params = {"id": message_id, "until": until, "now": now}
        return await self._driver.run(changed(_CLAIM, params)) > 0

    async def release(self, message_ids: Sequence[str], *, next_at: datetime) -> None:
        if message_ids:
            await self._driver.run(_release(message_ids, next_at))

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
        """Record the message sent; with those other chats' senders record at the same moment,
        in one transaction."""
        await self._sent.add((message_id, vendor_id, at))

    async def retry(self, message_id: str, *, attempts: int, next_at: datetime) -> None:
        await self._driver.run(
            _set(message_id, state=PENDING, attempts=attempts, next_attempt_at=next_at)
        )

    async def wait(self, message_id: str, *, at: datetime) -> None:
        await self._driver.run(_set(message_id, state=WAITING, next_attempt_at=None, updated_at=at))

    async def give_up(self, message_id: str, *, reason: str, at: datetime) -> None:
        await self._driver.run(
            _set(message_id, state=REFUSED, error=reason, next_attempt_at=None, updated_at=at)
        )

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


def _record_sent(sent: tuple[str, str | None, datetime]) -> Step:
    message_id, vendor_id, at = sent
    return _setting(
        message_id, state=SENT, vendor_id=vendor_id, next_attempt_at=None, updated_at=at
    )


def _release(message_ids: Sequence[str], next_at: datetime) -> Work[None]:
    for message_id in message_ids:
        yield _RELEASE, {"id": message_id, "next_at": next_at}


def _outgoing(row: Any) -> Outgoing:
    key = ChatKey(Channel(row.channel), row.chat_id)
    return Outgoing(row.message_id, key, load_reply(row.reply), row.attempts)
