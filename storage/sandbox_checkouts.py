"""How each sandbox checkout ended (paid, with which card brand, or expired): the sandbox
gateway's memory across restarts (implements ``adapters.sandbox_payments.CheckoutStates``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.driver import Driver, Statement, Work, only
from storage.models import SandboxCheckoutRow, table_of
from storage.upserts import put

_TABLE = table_of(SandboxCheckoutRow)
_ENDED = Statement(
    select(_TABLE.c.state, _TABLE.c.card_brand).where(_TABLE.c.session_id == bindparam("id"))
)


@dataclass
class SqlSandboxCheckouts:
    engine: AsyncEngine

    def __post_init__(self) -> None:
        self._driver = Driver(self.engine)

    async def ended(self, session_id: str) -> tuple[str, str | None] | None:
        return await self._driver.run(_ended(session_id), write=False)

    async def end(self, session_id: str, state: str, *, brand: str | None, at: datetime) -> bool:
        """Insert the end once: the primary key refuses a second one, whoever comes second."""
        new = {"state": state, "card_brand": brand, "at": at}
        ending = put(SandboxCheckoutRow, {"session_id": session_id}, {}, new=new)
        return bool((await self._driver.run_one(*only(ending))).rowcount)


def _ended(session_id: str) -> Work[tuple[str, str | None] | None]:
    rows = (yield _ENDED, {"id": session_id}).rows
    if not rows:
        return None
    state, brand = rows[0]
    return state, brand
