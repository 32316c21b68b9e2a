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

from sqlalchemy import Select, literal_column, select
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.catalog import Catalogue
from conversations.machine import ProfileChange, RecordConsent, RecordPromos, RememberLine
from conversations.model import ChatKey, Line, Order, OrderState
from conversations.ports import Claim, Move, Outgoing
from conversations.session import Profile, Session, dump_session, load_session
from storage.catalogue import STAMP, SqlCatalogue
from storage.customers import (
    NEWEST_LINE_FIRST,
    SAVED_LINE,
    SAVED_LINES,
    chat_params,
    inbound,
    lines_of,
    of_chat,
    upsert_customer,
)
from storage.driver import Driver, Rollback, Statement, Work, changed
from storage.models import ConversationRow, CustomerRow, SavedLineRow, table_of
from storage.orders import BOUGHT, ORDER, ORDERS, TOLD, make_move, purchase_of
from storage.outbox import put_outgoing, take
from storage.pending_updates import answered
from storage.upserts import put


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
        """The chat's session and the packages on sale now, in one read: what a step needs."""
        return await self._driver.run(self._for_step(key), write=False)

    def _for_step(self, key: ChatKey) -> Work[tuple[Session, Catalogue | None]]:
        if self.catalogue is None:
            return (yield from _load(key)), None
        found = (yield _CHAT_STATE_AND_STAMP, chat_params(key)).rows
        session = _session_of(found)
        stamp = tuple(found[0][-len(STAMP) :]) if found else None  # an unknown chat: read apart
        return session, (yield from self.catalogue.on_sale(stamp))

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
        was told before), after the move ``settles`` that ended it: one transaction."""
        work = _save(
            key, session, outgoing, claim, delivery, profile, notice, settles, at=self.clock()
        )
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
    return _session_of((yield _CHAT_STATE, chat_params(key)).rows)


def _session_of(found: list[Any]) -> Session:
    """The session of the chat's rows as ``_chat_state`` reads them (none: a new chat)."""
    if not found:
        return Session()
    row: Any = found[0]  # the columns by name, as purchase_of reads an order's
    lines = lines_of(
        (r.line_msisdn, r.line_owner_name, r.line_doc_type, r.line_doc_number) for r in found
    )
    profile = Profile(
        consented=row.consent_version is not None,
        promos_asked=row.promos_asked_at is not None,
        lines=lines,
        last=purchase_of(row) if row.product_code is not None else None,
    )
    return load_session(row.state, profile)


def _save(
    key: ChatKey,
    session: Session,
    outgoing: Sequence[Outgoing],
    claim: Claim | None,
    delivery: str | None,
    profile: Sequence[ProfileChange],
    notice: Order | None,
    settles: Move | None,
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


# In the SQL itself, not bound: PostgreSQL then plans the statement once per connection (its
# generic plan is as good as any), where bound constants had it planned again for every message.
_COMPLETED = f"'{OrderState.COMPLETED.value}'"


def _chat_state(*also: Any) -> Select[Any]:
    """The chat's customer (id, consent, promo question), its stored state, what its latest
    completed order bought (for "Repetir última recarga") and then ``also``, in a row for each of
    its saved lines, the newest first (one row without, its line columns NULL)."""
    customers, conversations = table_of(CustomerRow), table_of(ConversationRow)
    customer, conversation, done = customers.c, conversations.c, ORDERS.alias("done").c
    latest = (
        select(done.id)
        .where(done.customer_id == customer.id, done.state == literal_column(_COMPLETED))
        .order_by(done.created_at.desc(), done.id.desc())
        .limit(literal_column("1"))
        .correlate(customers)
        .scalar_subquery()
    )
    stmt = of_chat(
        customer.id,
        customer.consent_version,
        customer.promos_asked_at,
        conversation.state,
        *(ORDER[name] for name in BOUGHT),
        *(column.label(f"line_{column.key}") for column in SAVED_LINE),
        *also,
    )
    joined = (
        customers.outerjoin(conversations, conversation.customer_id == customer.id)
        .outerjoin(ORDERS, ORDER.id == latest)
        .outerjoin(SAVED_LINES, SAVED_LINES.c.customer_id == customer.id)
    )
    return stmt.select_from(joined).order_by(*NEWEST_LINE_FIRST)


_CHAT_STATE = Statement(_chat_state())
# What a step reads: the chat's row and the catalogue's stamp, in one round trip.
_CHAT_STATE_AND_STAMP = Statement(_chat_state(*STAMP))
