"""``SqlUsage``, the ``Usage`` port: what the abuse limits count, read for every checkout.

Links not (or no longer) paid never count against a number's daily ceiling; a chat's links count
while payable, and all of them for the hourly one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.limits import HOUR, CheckoutUsage, RecipientUsage
from conversations.model import ChatKey, OrderState
from storage.customers import chat_params, of_chat
from storage.driver import Driver, Statement, Work
from storage.models import CustomerRow, table_of
from storage.orders import ORDER

NOT_PAID = (
    OrderState.AWAITING_PAYMENT, OrderState.CANCELLED, OrderState.EXPIRED, OrderState.REFUNDED,
)  # fmt: skip
_MINE = ORDER.customer_id == of_chat(table_of(CustomerRow).c.id).scalar_subquery()
_AWAITING = ORDER.state == OrderState.AWAITING_PAYMENT.value
# Both of a chat's counts in one statement (one round trip on PostgreSQL).
_CHECKOUTS = Statement(
    select(
        select(func.count())
        .where(_MINE, _AWAITING, ORDER.checkout_expires_at > bindparam("now"))
        .scalar_subquery(),
        select(func.count()).where(_MINE, ORDER.created_at > bindparam("since")).scalar_subquery(),
    )
)
_PAID_FOR = Statement(
    select(func.count(), func.coalesce(func.sum(ORDER.amount_cents), 0)).where(
        ORDER.msisdn_hash == bindparam("msisdn"),
        ORDER.created_at >= bindparam("since"),
        and_(*(ORDER.state != state.value for state in NOT_PAID)),
    )
)
_OPEN_LINKS = Statement(select(ORDER.id).where(ORDER.msisdn_hash == bindparam("msisdn"), _AWAITING))


@dataclass
class SqlUsage:
    engine: AsyncEngine

    def __post_init__(self) -> None:
        self._driver = Driver(self.engine)

    async def checkouts(self, key: ChatKey, *, now: datetime) -> CheckoutUsage:
        """The chat's payable links now, and its links opened in the last hour."""
        return await self._driver.run(_checkouts(key, now), write=False)

    async def recipient(self, msisdn: str, *, since: datetime) -> RecipientUsage:
        """Orders for ``msisdn`` created since then that were paid (and not refunded)."""
        return await self._driver.run(_recipient(msisdn, since), write=False)

    async def open_links(self, msisdn: str) -> list[str]:
        """Orders for ``msisdn`` still awaiting payment, from any chat."""
        return await self._driver.run(_open_links(msisdn), write=False)


def _checkouts(key: ChatKey, now: datetime) -> Work[CheckoutUsage]:
    [(open_now, last_hour)] = (
        yield _CHECKOUTS, {**chat_params(key), "now": now, "since": now - HOUR}
    ).rows
    return CheckoutUsage(open_now, last_hour)


def _recipient(msisdn: str, since: datetime) -> Work[RecipientUsage]:
    [(count, amount)] = (yield _PAID_FOR, {"msisdn": msisdn, "since": since}).rows
    return RecipientUsage(count, amount)


def _open_links(msisdn: str) -> Work[list[str]]:
    return [order_id for (order_id,) in (yield _OPEN_LINKS, {"msisdn": msisdn}).rows]
