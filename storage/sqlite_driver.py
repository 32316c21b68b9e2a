"""SQLAlchemy's aiosqlite adapter with fewer trips to aiosqlite's thread per statement.

aiosqlite runs every sqlite3 call in its own thread; each call is a round trip through a queue and
back into the event loop. SQLAlchemy's adapter spends four of them on a SELECT (open a cursor,
execute, fetch, close) and three on an INSERT or UPDATE, and on this hot path those trips were
most of the CPU (bench/, the profile). This cursor runs the statement and reads its rows in one
trip, the way aiosqlite's own ``execute_fetchall`` does (through its ``_execute``, which
SQLAlchemy's adapter also reaches into), and does not close in the thread: the statement has
already run to the end, so the sqlite3 cursor holds no lock and is freed with the object. The
connection skips a rollback when no transaction is open: after a commit, closing the session and
the pool's reset each asked for one, a trip each for nothing.

Transactions and errors are SQLAlchemy's (the engine is given this module through
``create_async_engine(module=...)``).
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import EMPTY_DICT, greenlet_spawn


class _Cursor(AsyncAdapt_aiosqlite_cursor):
    __slots__ = ()

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No cursor yet: execute() makes one, in the same trip as the statement.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # typed as always set; unset until run
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()

    @property
    def description(self) -> Any:
        if "description" in self._soft_closed_memoized:
            return self._soft_closed_memoized["description"]
        return self._cursor.description if self._cursor is not None else None

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount if self._cursor is not None else -1

    @property
    def lastrowid(self) -> Any:
        return self._cursor.lastrowid if self._cursor is not None else None

    @property  # type: ignore[misc]  # fixed at 1: every row is fetched in the statement's trip
    def arraysize(self) -> int:
        return 1

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            connection = self._connection
            self._cursor, rows = await connection._execute(
                _execute_and_fetch, connection._conn, operation, parameters or ()
            )
            self._rows = collections.deque(rows)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        async with self._adapt_connection._execute_mutex:
            self._cursor = await self._connection.executemany(operation, seq_of_parameters)

    async def _async_soft_close(self) -> None:
        self._soft_closed_memoized = self._soft_closed_memoized.union(
            {"description": self.description}
        )

    def close(self) -> None:
        # The sqlite3 cursor stays: SQLAlchemy reads rowcount after closing a DML result.
        self._rows.clear()


def _execute_and_fetch(
    connection: sqlite3.Connection, operation: str, parameters: Any
) -> tuple[sqlite3.Cursor, list[Any]]:
    """Run in aiosqlite's thread: the statement, then its rows if it returns any."""
    cursor = connection.execute(operation, parameters)
    return cursor, cursor.fetchall() if cursor.description else []


class _Connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    # mypy compares the classes' constructors: ours takes the connection alone, as SQLAlchemy
    # calls it (the test in tests/integration/test_sqlite_driver.py checks it is the one used).
    _cursor_cls = _Cursor  # type: ignore[assignment]

    def rollback(self) -> None:
        connection = self._connection
        if connection._connection is not None and connection.in_transaction:
            super().rollback()


class _DBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> _Connection:
        return _Connection(self, super().connect(*arg, **kw)._connection)


def dbapi() -> _DBAPI:
    """The DBAPI module to give ``create_async_engine`` for an ``sqlite+aiosqlite`` URL."""
    return _DBAPI(aiosqlite, sqlite3)


TURN_LENGTH = 64  # driver transactions one turn may take before SQLAlchemy's waiters go


class Turns:
    """Lend the file database's one connection (``storage.db``) to the driver's transactions.

    The connection is taken straight from its pool's queue, where SQLAlchemy's own checkouts
    wait for it (first come, first served). A driver transaction runs in the event loop's thread
    (``storage.driver``) and gives it back at once; one that has to wait for another process's
    write lock runs in aiosqlite's thread, and others may join its turn there, queued back to
    back. The connection goes back when the last of them ends, or once a turn has taken
    ``TURN_LENGTH`` (SQLAlchemy's checkouts waiting in the queue then get it before the next).

    A pool checkout per transaction cost a greenlet, a proxy object and a reset on return, about
    a third of a short transaction (bench/). Until the connection exists, or when it was
    invalidated, a transaction takes the pool's ordinary way.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._record: Any = None  # the pool's entry for the connection, while lent to us
        self._taking: asyncio.Future[Any] | None = None
        self._running = 0  # driver transactions under way in this turn
        self._taken = 0  # driver transactions this turn has taken
        self._ended = asyncio.Event()

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[tuple[Any, bool]]:
        """The aiosqlite connection, to run one whole transaction on, and whether no other
        transaction is under way on it (one in aiosqlite's thread: then this one must queue
        there behind it, not run in the event loop's thread)."""
        while self._record is None or self._taken >= TURN_LENGTH:
            if self._record is not None:
                await self._ended.wait()  # this turn is long enough: the queue's waiters first
            elif not await self._take():
                async with checked_out(self._engine) as driver:
                    yield driver, True
                return
        self._running += 1
        self._taken += 1
        try:
            yield self._record.dbapi_connection.driver_connection, self._running == 1
        finally:
            self._running -= 1
            if not self._running:
                self._give_back()

    async def _take(self) -> bool:
        """Wait until the connection is taken from the pool's queue, by this call or by the one
        already waiting for it; False when there is no queue to take it from."""
        if self._taking is not None:
            await asyncio.shield(self._taking)
            return True
        pool: Any = self._engine.sync_engine.pool
        if not (isinstance(pool, AsyncAdaptedQueuePool) and pool._overflow >= pool._max_overflow):
            return False
        queue: Any = pool._pool
        self._taking = taking = asyncio.get_running_loop().create_future()
        try:
            record = await queue._queue.get()
            if record.dbapi_connection is None:  # invalidated: the pool's checkout reconnects it
                queue._queue.put_nowait(record)
                return False
            self._record, self._ended = record, asyncio.Event()
            self._running, self._taken = 0, 0
            return True
        finally:
            self._taking = None
            taking.set_result(None)  # whoever waited looks again

    def _give_back(self) -> None:
        record, self._record = self._record, None
        self._engine.sync_engine.pool._pool._queue.put_nowait(record)  # type: ignore[attr-defined]
        self._ended.set()


@asynccontextmanager
async def checked_out(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A connection checked out of the pool the ordinary way, as its driver's own."""
    pooled = await engine.raw_connection()
    try:
        yield pooled.driver_connection
    finally:
        await greenlet_spawn(pooled.close)  # the pool's reset may talk to the driver
