"""INSERT … ON CONFLICT, built once per shape: the upsert every storage module writes with.

Writes are built once per shape, with their values bound at execution: building an INSERT … ON
CONFLICT and its cache key each time cost about as much as running it (bench/, the profile).
SQLite and PostgreSQL spell it the same way.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import CursorResult, Table, UpdateBase
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from storage.models import table_of


@cache
def upsert(
    dialect: str, table: Table, keys: tuple[str, ...], update: tuple[str, ...], returning: str
) -> UpdateBase:
    """INSERT … ON CONFLICT (``keys``): set the ``update`` columns from the row offered, or, with
    none, do nothing on any conflict; SQLite and PostgreSQL spell it the same way. The columns
    inserted are the parameters it is executed with."""
    stmt: sqlite.Insert | postgresql.Insert
    stmt = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=keys, set_={name: stmt.excluded[name] for name in update}
        )
    else:
        stmt = stmt.on_conflict_do_nothing()
    return stmt.returning(table.c[returning]) if returning else stmt


async def put(
    db: AsyncConnection,
    model: type[SQLModel],
    keys: dict[str, Any],
    values: dict[str, Any],
    *,
    new: dict[str, Any] | None = None,
    returning: str = "",
) -> CursorResult[Any]:
    """Insert the row (with ``new`` too), or set ``values`` on the row with the same unique
    ``keys``; with no ``values``, a row already there is left as it is."""
    dialect = db.dialect.name
    stmt = upsert(dialect, table_of(model), tuple(keys), tuple(values), returning)
    return await db.execute(stmt, {**keys, **(new or {}), **values})
