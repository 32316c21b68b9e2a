"""Engine and session factories. Functions only: nothing connects at import time.

SQLite gets WAL, a busy timeout, enforced foreign keys and transactions that take the write lock
up front (``BEGIN IMMEDIATE``), so concurrent writers wait their turn instead of failing with
"database is locked"; its driver makes fewer thread trips per statement (``sqlite_driver``).
Any other URL (PostgreSQL through asyncpg) gets a pool that checks a connection before lending it
only when it may have gone stale (``_check_on_checkout``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlmodel.ext.asyncio.session import AsyncSession

import storage.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from storage.crypto import DataKeys, attach
from storage.sqlite_driver import dbapi

# synchronous=NORMAL: in WAL mode a commit no longer waits for fsync (the WAL is synced at each
# checkpoint), which was most of the time an update took (bench/). The database cannot be
# corrupted this way; a power cut (not a crash of the bot) may undo the last commits: the
# reconciler asks Stripe again about any order left unpaid, and a customer may have to repeat
# their last message.
BUSY_TIMEOUT_MS = 5000
SQLITE_PRAGMAS = (
    "journal_mode=WAL", "synchronous=NORMAL", f"busy_timeout={BUSY_TIMEOUT_MS}", "foreign_keys=ON",
)  # fmt: skip


def make_engine(url: str, *, keys: DataKeys | None = None) -> AsyncEngine:
    """Create the async engine for ``url``; SQLite is configured for concurrent writers.

    ``keys`` encrypt and hash the personal data columns; without them the engine gets throwaway
    keys (tests), so what it writes is readable by that engine only.
    """
    engine = _engine(url)
    attach(engine, keys or DataKeys.generate())
    return engine


def _engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # Room for the 20 chats held under advisory locks (storage.locks) and the work inside
        # them; 45 at most per process, so two replicas fit PostgreSQL's default 100.
        engine = create_async_engine(url, pool_size=20, max_overflow=25)
        _check_on_checkout(engine)
        return engine
    in_memory = parsed.database in (None, "", ":memory:")
    if not in_memory:
        _owner_only(Path(str(parsed.database)))
    # One shared connection, or each session would see its own empty database. Sessions must
    # then not overlap (two BEGINs on one connection fail): fine for tests, not for serving.
    # A file database: every transaction takes the write lock (BEGIN IMMEDIATE), so they run one
    # at a time anyway; one pooled connection queues them in the event loop (FIFO, no polling)
    # instead of in SQLite's busy handler, which sleeps up to 100 ms between tries (bench/).
    pool: dict[str, Any] = (
        {"poolclass": StaticPool} if in_memory else {"pool_size": 1, "max_overflow": 0}
    )
    # Made in aiosqlite's thread, the connection is also used in the event loop's (storage.driver),
    # one at a time: the pool, or Turns, lends it to one user at once.
    connect = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    engine = create_async_engine(url, connect_args=connect, module=dbapi(), **pool)
    event.listen(engine.sync_engine, "connect", _configure_sqlite)
    event.listen(engine.sync_engine, "begin", _begin_immediate)
    return engine


# A connection idle this long is pinged before it is lent again (the server may have restarted,
# or a firewall dropped the idle socket); one in steady use is not.
PING_AFTER_IDLE_S = 10.0


def _check_on_checkout(engine: AsyncEngine) -> None:
    """SQLAlchemy's ``pool_pre_ping`` on asyncpg is three round trips (BEGIN, a ping, ROLLBACK) on
    every checkout, and the driver checks one out for each transaction (bench/: with the advisory
    lock taken through asyncpg, a fifth of a replica's CPU per update). Here a checkout costs
    nothing unless the connection is already known closed, or sat idle long enough to have gone
    stale unnoticed: then it is pinged, and a dead one is replaced (the pool retries on
    ``DisconnectionError``)."""

    @event.listens_for(engine.sync_engine, "checkin")
    def idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_from"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("connection closed while idle")
        idle_from = record.info.get("idle_from")  # none yet: connected just now
        if idle_from is not None and time.monotonic() - idle_from > PING_AFTER_IDLE_S:
            try:
                dbapi_connection.ping()
            except Exception as error:
                raise DisconnectionError("connection lost while idle") from error


def _owner_only(path: Path) -> None:
    """Create the database file 0600, or narrow an existing one: it holds keyed hashes, amounts
    and states. SQLite gives its -wal and -shm files the database file's own mode."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)


# The ids of the sqlite3 connections whose busy_timeout is 0 now. The driver's write transactions
# in the event loop's thread must not wait there for another process's lock (storage.driver);
# SQLAlchemy's and those in aiosqlite's thread must. The timeout is switched only when the
# connection passes from one kind to the other: switching it twice around every driver write
# was two statements of its ten (bench/).
_IMPATIENT: set[int] = set()
_PATIENT = f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"


def impatient(db: sqlite3.Connection) -> None:
    """Make a BEGIN IMMEDIATE on ``db`` fail at once when another process holds the lock."""
    if id(db) not in _IMPATIENT:
        db.execute("PRAGMA busy_timeout = 0")
        _IMPATIENT.add(id(db))


def patient(db: sqlite3.Connection, execute: Callable[[str], object] | None = None) -> None:
    """Make ``db`` wait for another process's lock again, up to ``BUSY_TIMEOUT_MS``; the
    PRAGMA through ``execute`` if given (SQLAlchemy's connection holding ``db``)."""
    if id(db) in _IMPATIENT:
        (execute or db.execute)(_PATIENT)
        _IMPATIENT.discard(id(db))


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # The driver must not emit its own BEGIN: _begin_immediate does (SQLAlchemy's recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()
    _IMPATIENT.discard(id(dbapi_connection.driver_connection._conn))  # a new one at an old id


def _begin_immediate(connection: Connection) -> None:
    # Take the write lock when the transaction starts: a deferred read transaction that later
    # writes cannot wait for the lock and fails at once with "database is locked".
    raw = connection.connection.driver_connection
    if raw is not None:  # after the driver's own writes, it waits again
        patient(raw._conn, connection.exec_driver_sql)
    connection.exec_driver_sql("BEGIN IMMEDIATE")


# The ORM's sessions, for the repositories that work with entities (campaigns, privacy, audit);
# the per-message transactions (storage.chats, storage.orders, storage.outbox…) run on the
# driver (storage.driver).
Sessions = async_sessionmaker[AsyncSession]


def make_sessionmaker(engine: AsyncEngine) -> Sessions:
    """Return the factory of SQLModel async sessions; objects stay readable after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
