"""Promo campaigns and their recipients in SQL (``conversations.broadcast.Campaigns``).

The audience is drawn once, when sending starts, by one ``INSERT … SELECT`` over the customers
(nothing is loaded into memory): opted in to promos, not opted out (BAJA / STOP / 21610), not
blocked, on the campaign's channels, optionally filtered by their completed orders. A unique
(campaign, customer) pair keeps anyone from being in an audience twice. Each row then moves
forward by conditional UPDATEs only, so two runs of the same campaign cannot both claim a row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Insert,
    Update,
    and_,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from conversations.broadcast import Promo, Recipient, RecipientState
from conversations.model import Channel, ChatKey, OrderState
from storage.models import (
    CampaignRecipientRow,
    CampaignRow,
    CustomerRow,
    OrderRow,
    UtcDateTime,
)

Sessions = async_sessionmaker[AsyncSession]
R = RecipientState


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


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SqlCampaigns:
    """Campaigns, their audiences and the per-recipient delivery log."""

    sessions: Sessions
    clock: Callable[[], datetime] = _now
    _outcomes: list[tuple[int, RecipientState]] = field(default_factory=list)

    async def create(self, promo: Promo, audience: Audience, *, created_by: str) -> int:
        """Store a draft campaign; nobody is in its audience until ``start``."""
        row = CampaignRow(
            text=promo.text, image_url=promo.image_url, template_sid=promo.template_sid,
            template_vars=promo.template_vars, channels=_join(audience.channels),
            inactive_days=audience.inactive_days, recharged_only=audience.recharged_only,
            state="draft", created_by=created_by, created_at=self.clock(),
        )  # fmt: skip
        async with self.sessions() as db:
            db.add(row)
            await db.commit()
            assert row.id is not None
            return row.id

    async def audience_size(self, audience: Audience) -> dict[str, int]:
        """How many customers the audience holds now, per channel (for a dry run)."""
        stmt = (
            select(CustomerRow.channel, func.count())
            .where(*_eligible(audience, self.clock()))
            .group_by(CustomerRow.channel)
        )
        async with self.sessions() as db:
            rows = (await db.exec(stmt)).all()
        return {channel.value: 0 for channel in audience.channels} | dict(rows)  # type: ignore[arg-type]

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
            if moved.rowcount != 1:  # type: ignore[attr-defined]
                await db.rollback()
                return False
            await db.exec(_draw(campaign_id, campaign.audience, now))
            await db.commit()
        return True

    async def get(self, campaign_id: int) -> Campaign | None:
        """The campaign, or None."""
        async with self.sessions() as db:
            row = await db.get(CampaignRow, campaign_id)
        return _campaign(row) if row else None

    async def latest(self, limit: int = 20) -> list[Campaign]:
        """The most recent campaigns, newest first."""
        stmt = select(CampaignRow).order_by(col(CampaignRow.id).desc()).limit(limit)
        async with self.sessions() as db:
            rows = (await db.exec(stmt)).scalars().all()
        return [_campaign(row) for row in rows]

    async def tally(self, campaign_id: int) -> dict[str, int]:
        """Recipients per delivery state."""
        stmt = (
            select(CampaignRecipientRow.state, func.count())
            .where(col(CampaignRecipientRow.campaign_id) == campaign_id)
            .group_by(CampaignRecipientRow.state)
        )
        async with self.sessions() as db:
            return dict((await db.exec(stmt)).all())  # type: ignore[arg-type]

    # ------------------------------------------------------------ the Campaigns port

    async def reset_in_flight(self, campaign_id: int) -> int:
        """Turn rows left in ``sending`` into ``unknown``: they are never sent again."""
        return await self._move(
            and_(_of(campaign_id), col(CampaignRecipientRow.state) == R.SENDING.value), R.UNKNOWN
        )

    async def pending(self, campaign_id: int, *, after: int, limit: int) -> Sequence[Recipient]:
        """The next pending recipients after id ``after``, by id (keyset pagination)."""
        stmt = (
            select(CampaignRecipientRow.id, CustomerRow.channel, CustomerRow.chat_id)
            .join(CustomerRow, _customer_of_recipient())
            .where(_of(campaign_id), col(CampaignRecipientRow.state) == R.PENDING.value)
            .where(col(CampaignRecipientRow.id) > after)
            .order_by(col(CampaignRecipientRow.id))
            .limit(limit)
        )
        async with self.sessions() as db:
            rows = (await db.exec(stmt)).all()
        return [Recipient(id, ChatKey(Channel(channel), chat_id)) for id, channel, chat_id in rows]

    async def claim(self, recipient_ids: Sequence[int]) -> dict[int, RecipientState]:
        """Mark pending rows ``sending``, or final if the customer may no longer get promos.

        Outcomes recorded since the last claim are written in the same commit. Until then their
        rows read ``sending``, which a crash turns into ``unknown``: never a duplicate.
        """
        flags = (
            select(
                CampaignRecipientRow.id, CustomerRow.opted_out_at, CustomerRow.promos_opt_in_at,
                CustomerRow.unreachable_at, CustomerRow.consent_version,
            )
            .join(CampaignRecipientRow, _customer_of_recipient())
            .where(col(CampaignRecipientRow.id).in_(recipient_ids))
            .where(col(CampaignRecipientRow.state) == R.PENDING.value)
        )  # fmt: skip
        async with self.sessions() as db:
            await self._write_outcomes(db)
            decided = {row[0]: _may_send(*row[1:]) for row in (await db.exec(flags)).all()}
            by_state: dict[RecipientState, list[int]] = {}
            for recipient_id, state in decided.items():
                by_state.setdefault(state, []).append(recipient_id)
            for state, ids in by_state.items():
                await db.exec(_moving(ids, R.PENDING, state, self.clock()))
            await db.commit()
        return decided

    async def settle(self, recipient_id: int, state: RecipientState) -> None:
        """Record the outcome of a row in ``sending``; written with the next claim or flush."""
        self._outcomes.append((recipient_id, state))

    async def flush(self) -> None:
        """Write the outcomes recorded so far."""
        async with self.sessions() as db:
            await self._write_outcomes(db)
            await db.commit()

    async def _write_outcomes(self, db: AsyncSession) -> None:
        taken, self._outcomes = self._outcomes, []
        by_state: dict[RecipientState, list[int]] = {}
        for recipient_id, state in taken:
            by_state.setdefault(state, []).append(recipient_id)
        for state, ids in by_state.items():
            await db.exec(_moving(ids, R.SENDING, state, self.clock()))

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
        await self.flush()
        async with self.sessions() as db:
            await db.exec(stmt)
            await db.commit()

    async def _move(self, where: ColumnElement[bool], to: RecipientState) -> int:
        stmt = update(CampaignRecipientRow).where(where).values(state=to.value)
        async with self.sessions() as db:
            moved = await db.exec(stmt.values(updated_at=self.clock()))
            await db.commit()
        return int(moved.rowcount)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- statements


def _customer_of_recipient() -> ColumnElement[bool]:
    return col(CustomerRow.id) == col(CampaignRecipientRow.customer_id)


def _of(campaign_id: int) -> ColumnElement[bool]:
    return col(CampaignRecipientRow.campaign_id) == campaign_id


def _moving(ids: list[int], source: RecipientState, to: RecipientState, at: datetime) -> Update:
    return (
        update(CampaignRecipientRow)
        .where(col(CampaignRecipientRow.id).in_(ids))
        .where(col(CampaignRecipientRow.state) == source.value)
        .values(state=to.value, updated_at=at)
    )


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


def _eligible(audience: Audience, now: datetime) -> list[ColumnElement[bool]]:
    """Opted in, not opted out, reachable, on the channels, and the order filters."""
    completed = and_(
        col(OrderRow.customer_id) == col(CustomerRow.id),
        col(OrderRow.state) == OrderState.COMPLETED.value,
    )
    conditions = [
        col(CustomerRow.channel).in_([c.value for c in audience.channels]),
        col(CustomerRow.promos_opt_in_at).is_not(None),
        col(CustomerRow.consent_version).is_not(None),  # erased customers lose it (ARCO)
        col(CustomerRow.opted_out_at).is_(None),
        col(CustomerRow.unreachable_at).is_(None),
    ]
    if audience.recharged_only:
        conditions.append(exists().where(completed))
    if audience.inactive_days is not None:
        since = now - timedelta(days=audience.inactive_days)
        conditions.append(~exists().where(completed, col(OrderRow.created_at) >= since))
    return conditions


def _draw(campaign_id: int, audience: Audience, now: datetime) -> Insert:
    """INSERT one pending row per eligible customer, in the database, in one statement."""
    stamp = literal(now, UtcDateTime())
    chosen = select(literal(campaign_id), CustomerRow.id, literal(R.PENDING.value), stamp).where(
        *_eligible(audience, now)
    )
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
        row.id, promo, audience, row.state, row.created_by, row.created_at, row.finished_at
    )
