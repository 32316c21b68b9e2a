"""Engine and session factories. Functions only: nothing connects at import time.

SQLite gets WAL, a busy timeout, enforced foreign keys and transactions that take the write lock
up front (``BEGIN IMMEDIATE``), so concurrent writers wait their turn instead of failing with
"database is locked". Any other URL (PostgreSQL through asyncpg) gets a plain engine.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)

SQLITE_PRAGMAS = ("journal_mode=WAL", "busy_timeout=5000", "foreign_keys=ON")


def make_engine(url: str) -> AsyncEngine:
    """Create the async engine for ``url``; SQLite is configured for concurrent writers."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url)
    in_memory = parsed.database in (None, "", ":memory:")
    # One shared connection, or each session would see its own empty database. Sessions must
    # then not overlap (two BEGINs on one connection fail): fine for tests, not for serving.
    pool: dict[str, Any] = {"poolclass": StaticPool} if in_memory else {}
    engine = create_async_engine(url, connect_args={"timeout": 5}, **pool)
    event.listen(engine.sync_engine, "connect", _configure_sqlite)
    event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The driver must not emit its own BEGIN: _begin_immediate does (SQLAlchemy's recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _begin_immediate(connection: Connection) -> None:
    # Take the write lock when the transaction starts: a deferred read transaction that later
    # writes cannot wait for the lock and fails at once with "database is locked".
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return the factory of SQLModel async sessions; objects stay readable after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


async def create_tables(engine: AsyncEngine) -> None:
    """Create any missing table (existing ones are left as they are)."""
    async with engine.begin() as connection:
        await connection.run_sync(SQLModel.metadata.create_all)
