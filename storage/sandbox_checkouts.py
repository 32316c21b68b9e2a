"""How each sandbox checkout ended (paid, with which card brand, or expired): the sandbox
gateway's memory across restarts (implements ``adapters.sandbox_payments.CheckoutStates``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.models import SandboxCheckoutRow, table_of

_TABLE = table_of(SandboxCheckoutRow)


@dataclass
class SqlSandboxCheckouts:
    engine: AsyncEngine

    async def ended(self, session_id: str) -> tuple[str, str | None] | None:
        stmt = select(_TABLE.c.state, _TABLE.c.card_brand).where(_TABLE.c.session_id == session_id)
        async with self.engine.connect() as db:
            row = (await db.execute(stmt)).first()
        return (row.state, row.card_brand) if row else None

    async def end(self, session_id: str, state: str, *, brand: str | None, at: datetime) -> bool:
        """Insert the end once: the primary key refuses a second one, whoever comes second."""
        row = {"session_id": session_id, "state": state, "card_brand": brand, "at": at}
        try:
            async with self.engine.begin() as db:
                await db.execute(insert(_TABLE).values(row))
        except IntegrityError:
            return False
        return True
