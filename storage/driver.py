"""The per-message transactions, run on the database driver itself instead of SQLAlchemy's
execution layer (aiosqlite on SQLite, asyncpg on PostgreSQL).

Every message went through several transactions, and SQLAlchemy's execution layer (cache keys,
parameter and result processing, the greenlet bridge, a trip to aiosqlite's thread for each
statement, BEGIN and COMMIT) was most of an update's instructions (bench/). Here:

- a statement is still SQLAlchemy Core built on the models, the schema's one source; it is
  compiled once per engine into the driver's own SQL, with the bind and result processors of its
  columns' types (``UtcDateTime``, ``EncryptedText``, ``KeyedHash``), so values are written and
  read exactly as SQLAlchemy writes and reads them;
- a transaction is a generator that yields ``(statement, parameters)`` and is sent back each
  statement's ``Result``; the same generator runs on both databases. On PostgreSQL each
  statement is one asyncpg call inside one transaction. On SQLite the whole transaction runs in
  the event loop's own thread: on a local file in WAL mode, with no fsync at commit, it takes
  tens of microseconds, where the trip to aiosqlite's thread and back cost three to five times
  that in CPU and made the two threads trade the GIL on every statement (bench/). Only when
  another process holds SQLite's write lock does it wait, in aiosqlite's thread. (A commit
  that checkpoints the WAL, about every thousand pages written, syncs the file in the loop's
  thread too: a few milliseconds now and then.)

The connection is the engine's own pooled one: on SQLite ``Turns`` (``storage.sqlite_driver``)
lends the single connection, and SQLAlchemy's own transactions take their turn with the
driver's instead of racing them for SQLite's lock; on PostgreSQL a task holding a chat runs on
the connection that holds the chat's lock (``lent``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import namedtuple
from collections.abc import (
    AsyncIterator,
    Callable,
    Generator,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Dialect, Select, Table, UpdateBase, bindparam
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.db import impatient, patient
from storage.sqlite_driver import Turns, checked_out

T = TypeVar("T")
Item = TypeVar("Item")
Processor = Callable[[Any], Any]


class Result(NamedTuple):
    rows: list[Any]  # processed, as SQLAlchemy hands them back: unpack them or read by name
    rowcount: int


# A statement with its parameters.
Step = tuple["Statement", Mapping[str, Any]]
# A transaction's body: yields each statement with its parameters, gets its Result back.
Work = Generator[Step, Result, T]

_MISSING = object()


class Rollback(Exception):
    """Raised by a ``Work`` to undo what it wrote; the transaction returns ``value``."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


Built = UpdateBase | Select  # type: ignore[type-arg]  # what a Statement runs: DML, or a query


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple[tuple[str, Any, Processor | None], ...]  # in the SQL's order: name, default
    columns: tuple[Processor | None, ...]
    row: Callable[[Iterable[Any]], tuple[Any, ...]]  # a named tuple: row.state or unpacked

    def bind(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        bound = []
        for name, default, process in self.params:
            value = values.get(name, default)
            if value is _MISSING:
                raise KeyError(f"no value for the statement's parameter {name!r}")
            try:
                bound.append(value if process is None else process(value))
            except Exception as error:  # a naive datetime, say: raised as SQLAlchemy raises it
                raise StatementError(str(error), self.sql, None, error) from error
        return tuple(bound)

    def read(self, rows: Any) -> list[tuple[Any, ...]]:
        columns, make = self.columns, self.row
        if not any(columns):
            return [make(row) for row in rows]
        return [
            make(v if p is None or v is None else p(v) for v, p in zip(row, columns, strict=True))
            for row in rows
        ]


STATEMENTS: list[Statement] = []  # every one made, for the test that runs them on both databases


class Statement:
    """A Core statement, compiled once per dialect for the driver. Its parameters are its bind
    parameters' names; an INSERT's columns are ``columns`` (what it is executed with).

    ``build`` is the statement, or makes it for a dialect's name where the two spell it apart
    (``sqlite.insert`` and ``postgresql.insert`` for ON CONFLICT)."""

    def __init__(
        self, build: Built | Callable[[str], Built], *, columns: tuple[str, ...] = ()
    ) -> None:
        self._build = build
        self.columns = columns
        self._built: dict[str, Built] = {}
        self._compiled: WeakKeyDictionary[Dialect, _Compiled] = WeakKeyDictionary()
        STATEMENTS.append(self)

    def statement(self, dialect: Dialect) -> Built:
        """The construct for ``dialect``, built once (``within`` runs it for every call)."""
        build = self._build
        if isinstance(build, UpdateBase | Select):
            return build
        built = self._built.get(dialect.name)
        if built is None:
            built = self._built[dialect.name] = build(dialect.name)
        return built

    def on(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect)
        if compiled is None:
            compiled = self._compiled[dialect] = self._compile(dialect)
        return compiled

    def _compile(self, dialect: Dialect) -> _Compiled:
        statement = self.statement(dialect)
        columns = list(self.columns) or None
        compiled: Any = statement.compile(dialect=dialect, column_keys=columns)
        params = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            default = _MISSING if bind.required else bind.effective_value
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            params.append((name, default, process))
        returned = getattr(statement, "exported_columns", ())
        processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in returned
        )
        names = [column.key or f"_{n}" for n, column in enumerate(returned)]
        row = namedtuple("Row", names, rename=True)._make  # type: ignore[attr-defined]
        return _Compiled(compiled.string, tuple(params), processors, row)


class Driver:
    """Run ``Work`` as one transaction on the engine's pooled connection, through its driver."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self._turns = turns_of(engine) if engine.dialect.name == "sqlite" else None
        # The engine's before_cursor_execute and commit listeners see these statements too, as
        # SQLAlchemy's own (tracing; the crash tests abort there): one check when there is none.
        self._events = engine.sync_engine.dispatch

    async def run(self, work: Work[T], *, write: bool = True) -> T:
        """Run the transaction; ``write=False`` for one that only reads (on SQLite it then does
        not take the write lock). A work that needs no statement (what it reads was read ahead)
        runs none: no transaction at all."""
        _forget_ahead()
        try:
            first = next(work)
        except StopIteration as done:
            value: T = done.value
            return value
        except Rollback as undo:
            undone: T = undo.value
            return undone
        events = self._events
        if self._turns is not None:
            async with self._turns.turn() as (driver, alone):
                conn = driver._conn  # aiosqlite's sqlite3 connection
                if alone and _began_here(conn, write):
                    return _statements(conn, first, work, self.dialect, events)
                ran: T = await driver._execute(
                    _run_sqlite, conn, first, work, self.dialect, write, events
                )
                return ran
        async with self._asyncpg() as driver:
            return await _run_asyncpg(driver, first, work, self.dialect, write, events)

    async def run_one(self, statement: Statement, values: Mapping[str, Any]) -> Result:
        """Run one statement as a transaction of its own: on PostgreSQL without BEGIN and COMMIT
        around it, two round trips fewer (the engine's commit listeners are told before it
        runs, as they would be before a COMMIT that then writes it)."""
        if self._turns is not None:
            return await self.run(_one(statement, values))
        _forget_ahead()
        async with self._asyncpg() as driver:
            compiled, args = _prepared(statement, values, self.dialect, self._events)
            if self._events.commit:
                self._events.commit(None)
            return await _execute_asyncpg(driver, compiled, args)

    @asynccontextmanager
    async def _asyncpg(self) -> AsyncIterator[Any]:
        """The connection lent to this task (``lent``), or one checked out of the pool."""
        lent = _LENT.get()
        if lent is not None and lent[0] is asyncio.current_task():
            yield lent[1]
            return
        async with checked_out(self.engine) as driver:
            yield driver


# The connection lent to a task, and that task (storage.locks: the one holding its chat's lock).
_LENT: ContextVar[tuple[asyncio.Task[Any] | None, Any] | None] = ContextVar("lent", default=None)


@contextmanager
def lent(db: Any) -> Iterator[None]:
    """Run this task's transactions on ``db`` (asyncpg's) instead of a connection checked out of
    the pool for each: the connection that holds the chat's advisory lock sits idle while the
    chat's update is handled, and each checkout and return cost more than the transaction's own
    statements (bench/). Only this task: one started inside inherits the variable, but running
    beside it on the same connection would fail (asyncpg runs one operation at a time), and it
    may outlive the lend."""
    token = _LENT.set((asyncio.current_task(), db))
    try:
        yield
    finally:
        _LENT.reset(token)


@dataclass
class _Ahead:
    task: asyncio.Task[Any] | None
    key: Hashable
    value: Any  # None once taken or dropped


# What was read ahead for this task's next statement (``read_ahead``); any statement run in the
# meantime, by this task or one it started, drops it.
_AHEAD: ContextVar[_Ahead | None] = ContextVar("ahead", default=None)


def read_ahead(key: Hashable, value: Any) -> None:
    """Keep what a statement read for the work keyed ``key`` that this task runs next: on
    PostgreSQL a round trip fewer when a check reads a chat's rows with its own, or a load
    learns what the save after it may skip (``storage.pending_updates``, ``storage.chats``).
    Good only until the task, or one it started, runs any other statement: then it may be out
    of date, and is dropped."""
    _AHEAD.set(_Ahead(asyncio.current_task(), key, value))


def taken_ahead(key: Hashable) -> Any:
    """What was read ahead for ``key`` by this very task, once; None when nothing was."""
    ahead = _AHEAD.get()
    if ahead is None or ahead.value is None:
        return None
    value, ahead.value = ahead.value, None
    return value if ahead.task is asyncio.current_task() and ahead.key == key else None


def _forget_ahead() -> None:
    ahead = _AHEAD.get()
    if ahead is not None:
        ahead.value = None


class Batched(Generic[Item]):
    """Writes asked for in the same turn of the event loop, made in one transaction.

    Under load many chats record a message sent at about the same moment; alone, each such
    one-row write paid a whole transaction (BEGIN, the lock, COMMIT), most of its cost (bench/).
    Each item is written by one statement (``write``), so a batch of one runs on its own.
    ``add`` returns once the transaction holding the item committed, or raises what it raised.
    """

    def __init__(self, driver: Driver, write: Callable[[Item], Step]) -> None:
        self._driver, self._write_one = driver, write
        self._items: list[Item] = []
        self._done: asyncio.Future[None] | None = None
        self._writing: set[asyncio.Task[None]] = set()

    async def add(self, item: Item) -> None:
        if self._done is None:  # the first of a batch: written once this turn of the loop ends
            self._done = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._write(self._done))
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)
        self._items.append(item)
        await asyncio.shield(self._done)

    async def _write(self, done: asyncio.Future[None]) -> None:
        items, self._items, self._done = self._items, [], None  # later items: the next batch
        steps = [self._write_one(item) for item in items]
        try:
            if len(steps) == 1:
                await self._driver.run_one(*steps[0])
            else:
                await self._driver.run(_in_turn(steps))
        except asyncio.CancelledError:
            done.cancel()  # its waiters are told, not left waiting
            raise
        except Exception as error:
            done.set_exception(error)
            done.exception()  # retrieved here too: its waiters may all have been cancelled
        else:
            done.set_result(None)


def _in_turn(steps: list[Step]) -> Work[None]:
    for step in steps:  # noqa: UP028 (a list's iterator cannot be sent each Result)
        yield step


def only(work: Work[Any]) -> Step:
    """The statement of a work that runs just one (``put``, ``changed``): ``run_one`` runs it."""
    return next(work)


def _one(statement: Statement, params: Mapping[str, Any]) -> Work[Result]:
    return (yield statement, params)


def changed(statement: Statement, params: Mapping[str, Any]) -> Work[int]:
    """Run one statement; how many rows it changed."""
    return (yield statement, params).rowcount


def set_columns(table: Table, columns: Iterable[str]) -> dict[str, Any]:
    """An UPDATE's SET from bound parameters ``v_<column>``, typed as their columns (an
    UPDATE's parameter may not take its column's name; an expression around it would not
    type it); run it with ``prefixed(values)``."""
    return {name: bindparam(f"v_{name}", type_=table.c[name].type) for name in columns}


def prefixed(values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of ``set_columns``'s SET for these column values."""
    return {f"v_{name}": value for name, value in values.items()}


def turns_of(engine: AsyncEngine) -> Turns:
    """The one lender of the engine's SQLite connection, shared by every repository's Driver
    (kept on the engine itself, so it goes with it)."""
    sync = engine.sync_engine
    turns: Turns | None = getattr(sync, "_recargabot_turns", None)
    if turns is None:
        turns = Turns(engine)
        setattr(sync, "_recargabot_turns", turns)  # noqa: B010 (an attribute of our own)
    return turns


async def within(db: AsyncConnection, work: Work[T]) -> T:
    """Run ``work``'s statements through SQLAlchemy on ``db``, inside the caller's transaction:
    for the repositories that still run on SQLAlchemy and share a step with the driver's ones
    (a customer's upsert), so that step has one implementation."""
    try:
        statement, values = next(work)
        while True:
            result = await db.execute(statement.statement(db.dialect), dict(values))
            rows = list(result) if result.returns_rows else []
            statement, values = work.send(Result(rows, result.rowcount))
    except StopIteration as done:
        value: T = done.value
        return value


def _run_sqlite(
    db: sqlite3.Connection, first: Step, work: Work[T], dialect: Dialect, write: bool, events: Any
) -> T:
    """In aiosqlite's thread, waiting for SQLite's lock as long as the connection's busy
    timeout allows: the whole transaction."""
    patient(db)
    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    return _statements(db, first, work, dialect, events)


def _began_here(db: sqlite3.Connection, write: bool) -> bool:
    """BEGIN without waiting; False when another process holds SQLite's write lock (the
    transaction then waits in aiosqlite's thread, not in the event loop)."""
    if not write:
        db.execute("BEGIN")  # WAL: a reader never waits for a writer
        return True
    impatient(db)
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode == sqlite3.SQLITE_BUSY:
            return False
        raise
    return True


def _prepared(
    statement: Statement, values: Mapping[str, Any], dialect: Dialect, events: Any
) -> tuple[_Compiled, tuple[Any, ...]]:
    """The statement's SQL and bound arguments, shown to the engine's listeners first."""
    compiled = statement.on(dialect)
    args = compiled.bind(values)
    if events.before_cursor_execute:
        events.before_cursor_execute(None, None, compiled.sql, args, None, False)
    return compiled, args


def _statements(
    db: sqlite3.Connection, first: Step, work: Work[T], dialect: Dialect, events: Any
) -> T:
    """Run the transaction begun on ``db`` (in autocommit mode: BEGIN and COMMIT are ours),
    from the work's ``first`` statement."""
    statement, values = first
    try:
        while True:
            compiled, args = _prepared(statement, values, dialect, events)
            try:
                cursor = db.execute(compiled.sql, args)
            except sqlite3.Error as error:  # as SQLAlchemy's: IntegrityError, OperationalError…
                raise DBAPIError.instance(compiled.sql, args, error, sqlite3.Error) from error
            rows = compiled.read(cursor.fetchall()) if cursor.description else []
            statement, values = work.send(Result(rows, cursor.rowcount))
    except StopIteration as done:
        try:
            if events.commit:
                events.commit(None)
            db.execute("COMMIT")
        except BaseException:  # raised in this handler, the one below would not see it
            if db.in_transaction:  # else the connection's next BEGIN fails, and every one after
                db.execute("ROLLBACK")
            raise
        value: T = done.value
        return value
    except Rollback as undo:
        db.execute("ROLLBACK")
        undone: T = undo.value
        return undone
    except BaseException:
        db.execute("ROLLBACK")
        raise


async def _run_asyncpg(
    db: Any, first: Step, work: Work[T], dialect: Dialect, write: bool, events: Any
) -> T:
    if not write:  # each read on its own: no BEGIN and COMMIT, two round trips fewer
        return await _statements_asyncpg(db, first, work, dialect, events)
    try:
        async with db.transaction():
            return await _statements_asyncpg(db, first, work, dialect, events)
    except Rollback as undo:  # the transaction block rolled back as it left
        undone: T = undo.value
        return undone


async def _statements_asyncpg(
    db: Any, first: Step, work: Work[T], dialect: Dialect, events: Any
) -> T:
    statement, values = first
    try:
        while True:
            compiled, args = _prepared(statement, values, dialect, events)
            statement, values = work.send(await _execute_asyncpg(db, compiled, args))
    except StopIteration as done:
        if events.commit:
            events.commit(None)
        value: T = done.value
        return value


async def _execute_asyncpg(db: Any, compiled: _Compiled, args: tuple[Any, ...]) -> Result:
    if compiled.columns:
        records = await db.fetch(compiled.sql, *args)
        return Result(compiled.read(records), len(records))
    status: str = await db.execute(compiled.sql, *args)
    count = status.rpartition(" ")[2]
    return Result([], int(count) if count.isdigit() else -1)
