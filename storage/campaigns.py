"""Promo campaigns and their recipients in SQL (``conversations.broadcast.Campaigns``).

The audience is drawn once, when sending starts, by one ``INSERT … SELECT`` over the customers
(nothing is loaded into memory): opted in to promos, not opted out (BAJA / STOP / 21610), not
blocked, on the campaign's channels, optionally filtered by their completed orders. A unique
(campaign, customer) pair keeps anyone from being in an audience twice. Each row then moves
forward by conditional UPDATEs only, so two runs of the same campaign cannot both claim a row.

Each transition is committed before its caller goes on (the claim before the request leaves, the
outcome right after the answer), but transitions asked for while a commit runs share the next one
(group commit). A commit of its own per transition held a 300/s campaign to about 80/s on SQLite
(one pooled connection, the HTTP work on the same core); shared, it keeps the pace.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVarTuple, cast

from sqlalchemy import (
    ColumnElement,
    Insert,
    Row,
    Select,
    Update,
    and_,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlmodel import col
from sqlmodel import select as select_models
from sqlmodel.ext.asyncio.session import AsyncSession

from conversations.broadcast import Promo, Recipient, RecipientState
from conversations.model import Channel, ChatKey, OrderState
from storage.db import Sessions
from storage.models import (
    CampaignRecipientRow,
    CampaignRow,
    CustomerRow,
    OrderRow,
    UtcDateTime,
)

R = RecipientState
_Ts = TypeVarTuple("_Ts")
# The model types its id ``int | None`` (unset before insert); a stored row's never is.
_RECIPIENT_ID = cast("ColumnElement[int]", col(CampaignRecipientRow.id))


@dataclass(frozen=True)
class Audience:
    """Who a campaign is for, beyond "opted in and reachable"."""

    channels: tuple[Channel, ...] = (Channel.TELEGRAM, Channel.WHATSAPP)
    inactive_days: int | None = None  # no completed order in the last N days ("keep it alive")
    recharged_only: bool = False  # at least one completed order


@dataclass(frozen=True)
class Campaign:
    id: int
    promo: Promo
    audience: Audience
    state: str
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    send_at: datetime | None = None  # a draft to start then (the console's "programar")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Move:
    """One row from ``source`` to ``to``; a claim (``to`` None) decides ``to`` from the flags."""

    recipient_id: int
    source: RecipientState
    to: RecipientState | None = None


Moved = RecipientState | None  # the row's new state, or None: it was not in ``source``


class _GroupCommit:
    """Commits moves; those asked for while one commit runs go together in the next.

    No task of its own: the first caller to find no commit under way writes everything queued,
    the others wait for that round to end and find their move written, or start the next round.
    """

    def __init__(self, write: Callable[[list[_Move]], Awaitable[list[Moved]]]) -> None:
        self._write = write
        self._queued: list[tuple[_Move, asyncio.Future[Moved]]] = []
        self._round: asyncio.Future[None] | None = None  # the commit under way

    async def apply(self, move: _Move) -> Moved:
        """Return once ``move`` is committed (or refused because the row had moved on)."""
        written: asyncio.Future[Moved] = asyncio.get_running_loop().create_future()
        entry = (move, written)
        self._queued.append(entry)
        try:
            while not entry[1].done():
                if self._round is None:
                    await self._flush()
                else:
                    await asyncio.shield(self._round)
        except asyncio.CancelledError:
            if entry in self._queued:  # not written: a dead caller's move is withdrawn
                self._queued.remove(entry)
            raise
        return entry[1].result()

    async def _flush(self) -> None:
        self._round = asyncio.get_running_loop().create_future()
        batch, self._queued = self._queued, []
        try:
            await self._commit(batch)
        finally:
            self._round.set_result(None)
            self._round = None

    async def _commit(self, batch: list[tuple[_Move, asyncio.Future[Moved]]]) -> None:
        try:
            states = await self._write([move for move, _ in batch])
        except Exception as error:  # every caller in the batch raises it
            for _, future in batch:
                future.set_exception(error)
            return
        except BaseException:  # cancelled: the commit may or may not have landed
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), state in zip(batch, states, strict=True):
            future.set_result(state)


@dataclass
class SqlCampaigns:
    """Campaigns, their audiences and the per-recipient delivery log."""

    sessions: Sessions
    clock: Callable[[], datetime] = _now
    _moves: _GroupCommit = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._moves = _GroupCommit(self._write)

    async def create(
        self, promo: Promo, audience: Audience, *, created_by: str, send_at: datetime | None = None
    ) -> int:
        """Store a draft campaign; nobody is in its audience until ``start``."""
        row = CampaignRow(
            text=promo.text, image_url=promo.image_url, template_sid=promo.template_sid,
            template_vars=promo.template_vars, channels=_join(audience.channels),
            inactive_days=audience.inactive_days, recharged_only=audience.recharged_only,
            state="draft", created_by=created_by, created_at=self.clock(), send_at=send_at,
        )  # fmt: skip
        async with self.sessions() as db:
            db.add(row)
            await db.commit()
            assert row.id is not None
            return row.id

    async def audience_size(self, audience: Audience) -> dict[str, int]:
        """How many customers the audience holds now, per channel (for a dry run)."""
        stmt = (
            select(col(CustomerRow.channel), func.count())
            .where(*_eligible(audience, self.clock()))
            .group_by(col(CustomerRow.channel))
        )
        async with self.sessions() as db:
            rows = await _rows(db, stmt)
        return {channel.value: 0 for channel in audience.channels} | dict(rows)

    async def start(self, campaign_id: int) -> bool:
        """Draw the audience into recipient rows and mark the campaign sending; False if started."""
        campaign = await self.get(campaign_id)
        if campaign is None:
            return False
        now = self.clock()
        async with self.sessions() as db:
            moved = await db.exec(
                update(CampaignRow)
                .where(col(CampaignRow.id) == campaign_id, col(CampaignRow.state) == "draft")
                .values(state="sending")
            )
            if moved.rowcount != 1:
                await db.rollback()
                return False
            await db.exec(_draw(campaign_id, campaign.audience, now))
            await db.commit()
        return True

    async def due(self) -> list[int]:
        """Scheduled drafts whose time has come, oldest first."""
        stmt = (
            select(col(CampaignRow.id))
            .where(col(CampaignRow.state) == "draft", col(CampaignRow.send_at) <= self.clock())
            .order_by(col(CampaignRow.send_at))
        )
        async with self.sessions() as db:
            return [i for (i,) in await _rows(db, stmt) if i is not None]

    async def cancel(self, campaign_id: int) -> bool:
        """Drop a draft (a scheduled send) before it goes out; False if it started already."""
        stmt = (
            update(CampaignRow)
            .where(col(CampaignRow.id) == campaign_id, col(CampaignRow.state) == "draft")
            .values(state="cancelled", finished_at=self.clock())
        )
        async with self.sessions() as db:
            moved = await db.exec(stmt)
            await db.commit()
        return bool(moved.rowcount)

    async def get(self, campaign_id: int) -> Campaign | None:
        """The campaign, or None."""
        async with self.sessions() as db:
            row = await db.get(CampaignRow, campaign_id)
        return _campaign(row) if row else None

    async def latest(self, limit: int = 20) -> list[Campaign]:
        """The most recent campaigns, newest first."""
        stmt = select_models(CampaignRow).order_by(col(CampaignRow.id).desc()).limit(limit)
        async with self.sessions() as db:
            rows = (await db.exec(stmt)).all()
        return [_campaign(row) for row in rows]

    async def tally(self, campaign_id: int) -> dict[str, int]:
        """Recipients per delivery state."""
        stmt = (
            select(col(CampaignRecipientRow.state), func.count())
            .where(col(CampaignRecipientRow.campaign_id) == campaign_id)
            .group_by(col(CampaignRecipientRow.state))
        )
        async with self.sessions() as db:
            return dict(await _rows(db, stmt))

    # ------------------------------------------------------------ the Campaigns port

    async def reset_in_flight(self, campaign_id: int) -> int:
        """Turn rows left in ``sending`` into ``unknown``: they are never sent again."""
        return await self._move(and_(_of(campaign_id), _in(R.SENDING)), R.UNKNOWN)

    async def pending(self, campaign_id: int, *, after: int, limit: int) -> Sequence[Recipient]:
        """The next pending recipients after id ``after``, by id (keyset pagination)."""
        stmt = (
            select(_RECIPIENT_ID, col(CustomerRow.channel), col(CustomerRow.chat_id))
            .join(CustomerRow, _customer_of_recipient())
            .where(_of(campaign_id), _in(R.PENDING))
            .where(col(CampaignRecipientRow.id) > after)
            .order_by(col(CampaignRecipientRow.id))
            .limit(limit)
        )
        async with self.sessions() as db:
            rows = await _rows(db, stmt)
        return [Recipient(id, ChatKey(Channel(channel), chat_id)) for id, channel, chat_id in rows]

    async def claim(self, recipient_id: int) -> RecipientState | None:
        """Commit a pending row as ``sending``, or final if the customer may no longer get promos.

        Called inside the send's rate-limit slot, right before its request: a crash then leaves
        in ``sending`` only rows whose request may have left.
        """
        return await self._moves.apply(_Move(recipient_id, R.PENDING))

    async def release(self, recipient_id: int) -> None:
        """Put a row in ``sending`` back to ``pending``: the channel said 429, nothing left."""
        await self._moves.apply(_Move(recipient_id, R.SENDING, R.PENDING))

    async def settle(self, recipient_id: int, state: RecipientState) -> None:
        """Commit the outcome of a row in ``sending``, right after its answer."""
        await self._moves.apply(_Move(recipient_id, R.SENDING, state))

    async def give_up(self, recipient_id: int, state: RecipientState) -> bool:
        """Give a pending row a final state without sending; False if it is not pending."""
        return await self._moves.apply(_Move(recipient_id, R.PENDING, state)) is not None

    async def finish(self, campaign_id: int) -> None:
        """Mark the campaign done when none of its rows is pending or sending."""
        open_rows = exists().where(
            _of(campaign_id),
            col(CampaignRecipientRow.state).in_([R.PENDING.value, R.SENDING.value]),
        )
        stmt = (
            update(CampaignRow)
            .where(col(CampaignRow.id) == campaign_id, col(CampaignRow.state) == "sending")
            .where(~open_rows)
            .values(state="done", finished_at=self.clock())
        )
        async with self.sessions() as db:
            await db.exec(stmt)
            await db.commit()

    async def _move(self, where: ColumnElement[bool], to: RecipientState) -> int:
        async with self.sessions() as db:
            moved = await db.exec(_moving(where, to, self.clock()))
            await db.commit()
        return int(moved.rowcount)

    async def _write(self, moves: list[_Move]) -> list[Moved]:
        """Write a batch of moves in one transaction."""
        at = self.clock()
        async with self.sessions() as db:
            claimed = await _claim(db, [m.recipient_id for m in moves if m.to is None], at)
            moved = await _apply(db, [m for m in moves if m.to is not None], at)
            await db.commit()
        return [
            claimed.get(m.recipient_id) if m.to is None else moved.get(m.recipient_id)
            for m in moves
        ]


async def _claim(db: AsyncSession, ids: list[int], at: datetime) -> dict[int, RecipientState]:
    """Pending rows to ``sending`` if the customer may still get promos, else to the reason."""
    if not ids:
        return {}
    may = exists().where(_customer_of_recipient(), *_reachable())
    claimed = await _moved(db, and_(_among(ids), _in(R.PENDING), may), R.SENDING, at)
    rest = [recipient_id for recipient_id in ids if recipient_id not in claimed]
    if not rest:
        return claimed
    found = await _rows(db, _flags(rest))  # changed their mind since the draw: rare
    refused = [_Move(row[0], R.PENDING, _may_send(*row[1:])) for row in found]
    return claimed | await _apply(db, refused, at)


async def _apply(db: AsyncSession, moves: list[_Move], at: datetime) -> dict[int, RecipientState]:
    """Move the rows still in their source state, one UPDATE per (source, target)."""
    groups: defaultdict[tuple[RecipientState, RecipientState], list[int]] = defaultdict(list)
    for move in moves:
        if move.to is not None:
            groups[move.source, move.to].append(move.recipient_id)
    moved: dict[int, RecipientState] = {}
    for (source, to), ids in groups.items():
        moved |= await _moved(db, and_(_among(ids), _in(source)), to, at)
    return moved


async def _moved(
    db: AsyncSession, where: ColumnElement[bool], to: RecipientState, at: datetime
) -> dict[int, RecipientState]:
    """UPDATE the rows ``where`` to ``to``; those it moved."""
    stmt = _moving(where, to, at).returning(col(CampaignRecipientRow.id))
    return dict.fromkeys((await db.exec(stmt)).scalars(), to)


# ---------------------------------------------------------------- statements


def _customer_of_recipient() -> ColumnElement[bool]:
    return col(CustomerRow.id) == col(CampaignRecipientRow.customer_id)


def _of(campaign_id: int) -> ColumnElement[bool]:
    return col(CampaignRecipientRow.campaign_id) == campaign_id


async def _rows(db: AsyncSession, stmt: Select[*_Ts]) -> Sequence[Row[*_Ts]]:
    """Run a Core SELECT in the session's transaction (``exec`` is typed for SQLModel's own)."""
    return (await (await db.connection()).execute(stmt)).all()


def _in(state: RecipientState) -> ColumnElement[bool]:
    return col(CampaignRecipientRow.state) == state.value


def _among(recipient_ids: list[int]) -> ColumnElement[bool]:
    return col(CampaignRecipientRow.id).in_(recipient_ids)


_Flags = Select[int, datetime | None, datetime | None, datetime | None, str | None]


def _flags(recipient_ids: list[int]) -> _Flags:
    """Why the customers of these pending rows may no longer get the promo."""
    return (
        select(
            _RECIPIENT_ID, col(CustomerRow.opted_out_at),
            col(CustomerRow.promos_opt_in_at), col(CustomerRow.unreachable_at),
            col(CustomerRow.consent_version),
        )
        .join(CampaignRecipientRow, _customer_of_recipient())
        .where(_among(recipient_ids), _in(R.PENDING))
    )  # fmt: skip


def _moving(where: ColumnElement[bool], to: RecipientState, at: datetime) -> Update:
    return update(CampaignRecipientRow).where(where).values(state=to.value, updated_at=at)


def _may_send(
    opted_out: datetime | None,
    opted_in: datetime | None,
    unreachable: datetime | None,
    consent: str | None,
) -> RecipientState:
    """SENDING, or why the customer may no longer get the promo (changed their mind, erased)."""
    if opted_out is not None or opted_in is None or consent is None:
        return R.OPTED_OUT
    return R.BLOCKED if unreachable is not None else R.SENDING


def _reachable() -> list[ColumnElement[bool]]:
    """Customers who may get promos now (``_may_send`` says why not, row by row)."""
    return [
        col(CustomerRow.promos_opt_in_at).is_not(None),
        col(CustomerRow.consent_version).is_not(None),  # erased customers lose it (ARCO)
        col(CustomerRow.opted_out_at).is_(None),
        col(CustomerRow.unreachable_at).is_(None),
    ]


def _eligible(audience: Audience, now: datetime) -> list[ColumnElement[bool]]:
    """Opted in, not opted out, reachable, on the channels, and the order filters."""
    completed = and_(
        col(OrderRow.customer_id) == col(CustomerRow.id),
        col(OrderRow.state) == OrderState.COMPLETED.value,
    )
    conditions: list[ColumnElement[bool]] = [
        col(CustomerRow.channel).in_([c.value for c in audience.channels])
    ]
    conditions += _reachable()
    if audience.recharged_only:
        conditions.append(exists().where(completed))
    if audience.inactive_days is not None:
        since = now - timedelta(days=audience.inactive_days)
        conditions.append(~exists().where(completed, col(OrderRow.created_at) >= since))
    return conditions


def _draw(campaign_id: int, audience: Audience, now: datetime) -> Insert:
    """INSERT one pending row per eligible customer, in the database, in one statement."""
    stamp = literal(now, UtcDateTime())
    chosen = select(
        literal(campaign_id), col(CustomerRow.id), literal(R.PENDING.value), stamp
    ).where(*_eligible(audience, now))
    columns = ["campaign_id", "customer_id", "state", "updated_at"]
    return insert(CampaignRecipientRow).from_select(columns, chosen)


def _join(channels: Sequence[Channel]) -> str:
    return ",".join(channel.value for channel in channels)


def _campaign(row: CampaignRow) -> Campaign:
    assert row.id is not None
    promo = Promo(row.text, row.image_url, row.template_sid, row.template_vars)
    channels = tuple(Channel(name) for name in row.channels.split(",") if name)
    audience = Audience(channels, row.inactive_days, row.recharged_only)
    return Campaign(
        row.id,
        promo,
        audience,
        row.state,
        row.created_by,
        row.created_at,
        row.finished_at,
        row.send_at,
    )
