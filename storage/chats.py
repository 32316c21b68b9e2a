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

from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.catalog import Catalogue
from conversations.machine import ProfileChange, RecordConsent, RecordPromos, RememberLine
from conversations.model import ChatKey, Line, Order
from conversations.ports import Claim, Move, Outgoing
from conversations.session import Session, dump_session
from storage.catalogue import STAMP, SqlCatalogue
from storage.chat_reads import CHAT_STATE, CHAT_STATE_AND_STAMP, session_of
from storage.customers import chat_params, inbound, upsert_customer
from storage.driver import Driver, Rollback, Work, changed, read_ahead, taken_ahead
from storage.models import ConversationRow, SavedLineRow
from storage.orders import TOLD, make_move
from storage.outbox import put_outgoing, put_taken, take
from storage.pending_updates import answered
from storage.upserts import put

_OWES_NOTHING = "owes nothing"  # with a chat's key: what its load found, for its save


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SqlConversationStore:
    """Chat state per conversation, plus the customer's consent and saved lines."""

    engine: AsyncEngine
    # save() is given no time, so the conversation's updated_at comes from this clock.
    clock: Callable[[], datetime] = _utc_now
    catalogue: SqlCatalogue | None = None  # read with the chat by load_for_step

    def __post_init__(self) -> None:
        self._driver = Driver(self.engine)

    async def load(self, key: ChatKey) -> Session:
        """Return the chat's session with the customer's profile; an unknown chat starts afresh."""
        return await self._driver.run(_load(key), write=False)

    async def load_for_step(self, key: ChatKey) -> tuple[Session, Catalogue | None]:
        """The chat's session and the packages on sale now, in one read: what a step needs
        (none at all when the inbox's delivery check read them ahead, ``pending_updates``).
        A chat that owes no message is noted so, for this task's save of the step."""
        work = self._for_step(key, taken_ahead(key))
        session, sale, owes = await self._driver.run(work, write=False)
        if not owes:
            read_ahead((_OWES_NOTHING, key), True)
        return session, sale

    def _for_step(
        self, key: ChatKey, found: list[Any] | None
    ) -> Work[tuple[Session, Catalogue | None, bool]]:
        if found is None:
            statement = CHAT_STATE if self.catalogue is None else CHAT_STATE_AND_STAMP
            found = (yield statement, chat_params(key)).rows
        owes = not found or found[0].owes  # a chat not known yet: not known either
        if self.catalogue is None:
            return session_of(found), None, owes
        stamp = tuple(found[0][-len(STAMP) :]) if found else None  # an unknown chat: read apart
        return session_of(found), (yield from self.catalogue.on_sale(stamp)), owes

    async def save(
        self,
        key: ChatKey,
        session: Session,
        *,
        outgoing: Sequence[Outgoing] = (),
        claim: Claim | None = None,
        delivery: str | None = None,
        profile: Sequence[ProfileChange] = (),
        notice: Order | None = None,
        settles: Move | None = None,
    ) -> Sequence[Outgoing]:
        """Store the chat's state, what the step kept of the customer and its replies to send,
        and with ``claim`` take what the chat has to send now; with ``delivery``, record the
        message answered as delivered; with ``notice``, the order told (nothing at all if it
        was told before), after the move ``settles`` that ended it: one transaction.

        When this task's load found the chat owing nothing and ran nothing since, its replies go
        in taken: the take would find nothing else (the chat is held; any statement run since
        drops the note)."""
        owes = claim is None or taken_ahead((_OWES_NOTHING, key)) is None
        work = _save(
            key, session, outgoing, claim, delivery, profile, notice, settles, owes,
            at=self.clock(),
        )  # fmt: skip
        return await self._driver.run(work)

    async def record_consent(self, key: ChatKey, *, version: str, at: datetime) -> None:
        """Record that the customer accepted privacy notice ``version`` at ``at``."""
        await self._driver.run(_keep(key, [RecordConsent(version)], at=at))

    async def record_promos(self, key: ChatKey, *, opt_in: bool | None, at: datetime) -> None:
        """Record the promo question asked (None) or answered; a yes also lifts a BAJA."""
        await self._driver.run(_keep(key, [RecordPromos(opt_in)], at=at))

    async def remember_line(self, key: ChatKey, line: Line, *, at: datetime) -> None:
        """Save the line for next time, replacing the owner and document if it was saved before."""
        await self._driver.run(_keep(key, [RememberLine(line)], at=at))


def _load(key: ChatKey) -> Work[Session]:
    return session_of((yield CHAT_STATE, chat_params(key)).rows)


def _save(
    key: ChatKey,
    session: Session,
    outgoing: Sequence[Outgoing],
    claim: Claim | None,
    delivery: str | None,
    profile: Sequence[ProfileChange],
    notice: Order | None,
    settles: Move | None,
    owes: bool,
    *,
    at: datetime,
) -> Work[Sequence[Outgoing]]:
    if notice is not None:
        # The move that ends the order tells it in the same UPDATE: nobody told a state it was
        # not in before.
        tells = (
            settles is not None and settles.to is notice.state and settles.to not in settles.from_
        )
        if settles is not None and not (
            yield from make_move(notice.id, settles, at=at, told=tells)
        ):
            raise Rollback(())  # another caller ended the order (and tells it)
        told = {"order_id": notice.id, "told": notice.state.value}
        if not tells and not (yield from changed(TOLD, told)):
            raise Rollback(())  # told already (another teller), or the order moved on
    heard: dict[str, Any] = {}
    if delivery is not None:
        heard = yield from inbound(key, delivery, at=at)
        if not heard:  # recorded before: by its keeping too (a copy kept meanwhile goes)
            yield from answered(key, delivery)
    customer_id = yield from _keep(key, profile, at=at, **heard)
    values = {"state": dump_session(session), "updated_at": at}
    yield from put(ConversationRow, {"customer_id": customer_id}, values)
    if claim is not None and not owes:
        return (yield from put_taken(key, outgoing, claim, at=at))
    yield from put_outgoing(outgoing, at=at)
    return (yield from take(key, claim)) if claim is not None else ()


def _keep(
    key: ChatKey, profile: Sequence[ProfileChange], *, at: datetime, **also: Any
) -> Work[int]:
    """Upsert the chat's customer with ``also`` and the changes to its profile, in one statement
    for its own columns, then the lines to remember; return its id."""
    columns = dict(also)
    for change in profile:
        match change:
            case RecordConsent(version):
                columns |= {"consent_version": version, "consented_at": at}
            case RecordPromos(opt_in):
                columns["promos_asked_at"] = at
                if opt_in is not None:
                    columns["promos_opt_in_at"] = at if opt_in else None
                if opt_in:
                    columns["opted_out_at"] = None
    customer_id = yield from upsert_customer(key, at=at, **columns)
    for change in profile:
        if isinstance(change, RememberLine):
            yield from _remember_line(customer_id, change.line, at=at)
    return customer_id


def _remember_line(customer_id: int, line: Line, *, at: datetime) -> Work[None]:
    values = {
        "owner_name": line.owner_name,
        "doc_type": line.doc_type.value,
        "doc_number": line.doc_number,
        "updated_at": at,
        "msisdn": line.msisdn,
    }
    keys = {"customer_id": customer_id, "msisdn_hash": line.msisdn}
    yield from put(SavedLineRow, keys, values)
