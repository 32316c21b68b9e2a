"""The web console's operators: accounts, roles and password hashes (argon2id, made in bot.admin).

Emails are kept lower case so one person has one account; a disabled account keeps its row (the
audit log names it) and can no longer sign in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from storage.db import Sessions
from storage.models import OperatorRow


class Role(StrEnum):
    ADMIN = "admin"  # sees personal data on request (audited), refunds, sends promos
    AGENT = "agent"  # sees masked data only


@dataclass(frozen=True)
class Operator:
    id: int
    email: str
    role: Role
    password_hash: str
    disabled: bool


class OperatorExists(Exception):
    """An account with this email is there already."""


@dataclass
class SqlOperators:
    sessions: Sessions

    async def add(self, email: str, *, role: Role, password_hash: str, at: datetime) -> Operator:
        """Create an account; OperatorExists if the email has one."""
        row = OperatorRow(
            email=normal(email), role=role.value, password_hash=password_hash, created_at=at
        )
        async with self.sessions() as db:
            db.add(row)
            try:
                await db.commit()
            except IntegrityError:
                raise OperatorExists(email) from None
        return _operator(row)

    async def find(self, email: str) -> Operator | None:
        """The account of this email (enabled or not), or None."""
        stmt = select(OperatorRow).where(OperatorRow.email == normal(email))
        async with self.sessions() as db:
            row = (await db.exec(stmt)).first()
        return _operator(row) if row else None

    async def get(self, operator_id: int) -> Operator | None:
        async with self.sessions() as db:
            row = await db.get(OperatorRow, operator_id)
        return _operator(row) if row else None

    async def all(self) -> list[Operator]:
        async with self.sessions() as db:
            rows = (await db.exec(select(OperatorRow).order_by(col(OperatorRow.id)))).all()
        return [_operator(row) for row in rows]

    async def any_enabled(self) -> bool:
        """Whether anyone may sign in: with nobody, the console is off."""
        stmt = select(func.count()).where(col(OperatorRow.disabled_at).is_(None))
        async with self.sessions() as db:
            return bool((await db.exec(stmt)).one())

    async def disable(self, email: str, *, at: datetime) -> bool:
        """Stop the account from signing in; False if there is no such enabled account."""
        return await self._update(email, disabled_at=at)

    async def set_password(self, email: str, password_hash: str) -> bool:
        """Replace the password hash (a reset, or a rehash with newer parameters)."""
        return await self._update(email, password_hash=password_hash)

    async def _update(self, email: str, **values: object) -> bool:
        stmt = (
            update(OperatorRow)
            .where(col(OperatorRow.email) == normal(email), col(OperatorRow.disabled_at).is_(None))
            .values(**values)
        )
        async with self.sessions() as db:
            changed = (await db.exec(stmt)).rowcount
            await db.commit()
        return bool(changed)


def normal(email: str) -> str:
    return email.strip().lower()


def _operator(row: OperatorRow) -> Operator:
    assert row.id is not None
    return Operator(
        row.id, row.email, Role(row.role), row.password_hash, row.disabled_at is not None
    )
