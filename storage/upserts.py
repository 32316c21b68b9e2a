"""INSERT … ON CONFLICT, built once per shape: the upsert every storage module writes with.

Writes are built once per shape, with their values bound at execution: building an INSERT … ON
CONFLICT and its cache key each time cost about as much as running it (bench/, the profile).
SQLite and PostgreSQL spell it the same way, each with its own dialect's construct.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Table, UpdateBase
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel

from storage.driver import Result, Statement, Work
from storage.models import table_of


def upsert(
    dialect: str, table: Table, keys: tuple[str, ...], update: tuple[str, ...], returning: str
) -> UpdateBase:
    """INSERT … ON CONFLICT (``keys``): set the ``update`` columns from the row offered, or, with
    none, do nothing on any conflict. The columns inserted are the parameters it is run with."""
    stmt: sqlite.Insert | postgresql.Insert
    stmt = sqlite.insert(table) if dialect == "sqlite" else postgresql.insert(table)
    if update:
        stmt = stmt.on_conflict_do_update(
            index_elements=keys, set_={name: stmt.excluded[name] for name in update}
        )
    else:
        stmt = stmt.on_conflict_do_nothing()
    return stmt.returning(table.c[returning]) if returning else stmt


@cache
def _statement(
    table: Table,
    keys: tuple[str, ...],
    update: tuple[str, ...],
    returning: str,
    columns: tuple[str, ...],
) -> Statement:
    return Statement(
        lambda dialect: upsert(dialect, table, keys, update, returning), columns=columns
    )


def put(
    model: type[SQLModel],
    keys: dict[str, Any],
    values: dict[str, Any],
    *,
    new: dict[str, Any] | None = None,
    returning: str = "",
) -> Work[Result]:
    """Insert the row (with ``new`` too), or set ``values`` on the row with the same unique
    ``keys``; with no ``values``, a row already there is left as it is."""
    row = {**keys, **(new or {}), **values}
    statement = _statement(table_of(model), tuple(keys), tuple(values), returning, tuple(row))
    return (yield statement, row)
