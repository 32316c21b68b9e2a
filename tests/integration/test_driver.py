"""The per-message transactions on the driver (storage.driver): every statement is accepted by
the migrated schema, values are written and read as SQLAlchemy writes and reads them, and a
transaction that fails leaves nothing behind. Runs on SQLite and, in `make test`, PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.messages import Reply
from conversations.model import Channel, ChatKey, DocType, Line
from conversations.ports import Claim, Outgoing
from conversations.session import Session
from storage.chats import SqlConversationStore
from storage.customers import SqlContacts, upsert_customer
from storage.driver import STATEMENTS, Driver, Work
from storage.models import CustomerRow, table_of
from storage.outbox import SqlOutbox
from storage.pending_updates import SqlPendingUpdates

T0 = datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=UTC)
KEY = ChatKey(Channel.TELEGRAM, "4242")
OTHER = ChatKey(Channel.TELEGRAM, "4343")
LINE = Line("+51987654321", "Rosa Quispe", DocType.DNI, "45678912")


async def _every_per_message_write(engine: AsyncEngine) -> None:
    """Run each repository method that goes through the driver, so each statement is made."""
    store, outbox = SqlConversationStore(engine, clock=lambda: T0), SqlOutbox(engine)
    pending, contacts = SqlPendingUpdates(engine), SqlContacts(engine)
    await pending.add(KEY, 1, "{}", at=T0)
    await pending.take(KEY)
    await contacts.first_delivery(KEY, "m1", at=T0)
    await contacts.mark(KEY, at=T0, unreachable=False, opted_out=False, promos=True)
    await contacts.contact(KEY)
    await store.record_consent(KEY, version="v1", at=T0)
    await store.record_promos(KEY, opt_in=True, at=T0)
    await store.remember_line(KEY, LINE, at=T0)
    claim = Claim(True, T0, T0 + timedelta(minutes=1))
    await store.save(KEY, Session(), outgoing=[Outgoing("r:0", KEY, Reply("hola"))], claim=claim)
    await pending.seen(KEY, 2)
    await store.save(OTHER, Session())
    await store.load_for_step(OTHER)  # a chat that owes nothing: its next save puts in taken
    await store.save(OTHER, Session(), outgoing=[Outgoing("o:0", OTHER, Reply("y"))], claim=claim)
    await store.load(KEY)
    await outbox.add([Outgoing("r:1", KEY, Reply("b"))], at=T0)
    await outbox.claim("r:1", until=T0, now=T0)
    await outbox.release(["r:1"], next_at=T0)
    await outbox.sent("r:0", vendor_id="7", at=T0)
    await outbox.retry("r:1", attempts=1, next_at=T0)
    await outbox.wait("r:1", at=T0)
    await outbox.give_up("r:1", reason="400", at=T0)
    await outbox.take(KEY, Claim(False, T0, T0))


async def test_every_statement_is_accepted_by_the_migrated_schema(engine: AsyncEngine):
    await _every_per_message_write(engine)
    pooled = await engine.raw_connection()
    checked = 0
    try:
        driver: Any = pooled.driver_connection
        for statement in list(STATEMENTS):
            compiled = statement.on(engine.dialect)
            if engine.dialect.name == "sqlite":  # EXPLAIN prepares it against the schema, only
                nulls = (None,) * len(compiled.params)
                await driver.execute_fetchall(f"EXPLAIN {compiled.sql}", nulls)
            else:
                await driver.prepare(compiled.sql)  # parsed and planned by the server
            checked += 1
    finally:
        pooled.close()
    assert checked >= 15  # every statement above, the upserts' shapes included


async def test_values_are_written_and_read_as_sqlalchemy_does(engine: AsyncEngine):
    driver = Driver(engine)
    customer_id = await driver.run(upsert_customer(KEY, at=T0, consented_at=T0))

    async with engine.connect() as db:  # SQLAlchemy's own reading of the driver's row
        customers = table_of(CustomerRow)
        row = (await db.execute(select(customers).where(customers.c.id == customer_id))).one()
    contact = await SqlContacts(engine).contact(KEY)
    store = SqlConversationStore(engine, clock=lambda: T0)

    assert (row.chat_id, row.consented_at, row.last_seen_at) == ("4242", T0, T0)
    assert row.chat_hash != "4242"  # kept as its keyed hash
    assert contact.last_inbound_at is None and not contact.unreachable
    await store.remember_line(KEY, LINE, at=T0)
    assert (await store.load(KEY)).profile.lines == (LINE,)


async def test_a_transaction_that_fails_leaves_nothing(engine: AsyncEngine):
    def fails() -> Work[None]:
        yield from upsert_customer(KEY, at=T0)
        raise RuntimeError("between two statements")

    with pytest.raises(RuntimeError):
        await Driver(engine).run(fails())

    assert await SqlConversationStore(engine).load(KEY) == Session()
    assert await SqlContacts(engine).contact(KEY) == await SqlContacts(engine).contact(
        ChatKey(Channel.TELEGRAM, "never")
    )
    async with engine.connect() as db:
        assert (await db.execute(select(table_of(CustomerRow)))).all() == []


async def test_a_transaction_whose_commit_fails_leaves_nothing_and_the_next_one_goes(
    engine: AsyncEngine,
):
    def refuse(*_: object) -> None:
        raise RuntimeError("the disk is full")

    event.listen(engine.sync_engine, "commit", refuse)
    with pytest.raises(RuntimeError):
        await Driver(engine).run(upsert_customer(KEY, at=T0))
    event.remove(engine.sync_engine, "commit", refuse)

    async with engine.connect() as db:
        assert (await db.execute(select(table_of(CustomerRow)))).all() == []
    await Driver(engine).run(upsert_customer(KEY, at=T0))  # not "within a transaction"
    async with engine.connect() as db:
        assert len((await db.execute(select(table_of(CustomerRow)))).all()) == 1


@pytest.mark.sqlite_only
async def test_on_sqlite_the_driver_and_sqlalchemy_take_turns_on_the_one_connection(
    engine: AsyncEngine,
):
    contacts = SqlContacts(engine)
    await contacts.mark(KEY, at=T0)  # the connection exists (the pool made it)

    async with engine.begin() as db:  # SQLAlchemy holds the connection, mid-transaction
        await db.execute(select(table_of(CustomerRow).c.id))
        marking = asyncio.ensure_future(contacts.mark(KEY, at=T0, promos=True))
        done, _ = await asyncio.wait([marking], timeout=0.2)
        assert not done  # it waits for the transaction to end, in the queue
    await marking

    async with engine.connect() as db:
        promos = (await db.execute(select(table_of(CustomerRow).c.promos_opt_in_at))).scalar()
    assert promos == T0


@pytest.mark.sqlite_only
async def test_sqlalchemy_gets_its_turn_while_driver_transactions_keep_coming(
    engine: AsyncEngine,
):
    contacts = SqlContacts(engine)
    await contacts.mark(KEY, at=T0)
    order: list[str] = []

    async def driver(n: int) -> None:
        await contacts.mark(ChatKey(Channel.TELEGRAM, str(n)), at=T0)
        order.append("driver")

    async def sqlalchemy() -> None:
        async with engine.connect() as db:
            await db.execute(select(table_of(CustomerRow).c.id))
        order.append("sqlalchemy")

    first = [asyncio.ensure_future(driver(n)) for n in range(100)]
    waiting = asyncio.ensure_future(sqlalchemy())
    await asyncio.gather(*first, waiting, *(driver(n) for n in range(100, 200)))

    assert order.count("driver") == 200 and "sqlalchemy" in order
    assert order.index("sqlalchemy") < 200 - 1  # not left until every driver transaction ran


@pytest.mark.sqlite_only
async def test_while_another_process_writes_a_transaction_waits_off_the_event_loop(
    engine: AsyncEngine, database_url: str
):
    """A transaction runs in the event loop's thread unless SQLite's write lock is taken (by
    another process): then it waits in aiosqlite's thread, keeping its turn on the connection."""
    contacts = SqlContacts(engine)
    await contacts.mark(KEY, at=T0)
    other = sqlite3.connect(database_url.split("///", 1)[1], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock

    async def read() -> Any:
        async with engine.connect() as db:
            return (await db.execute(select(table_of(CustomerRow).c.promos_opt_in_at))).scalar()

    marking = asyncio.ensure_future(contacts.mark(KEY, at=T0, promos=True))
    waited, _ = await asyncio.wait([marking], timeout=0.2)  # the loop kept turning meanwhile
    behind = asyncio.ensure_future(contacts.mark(ChatKey(Channel.TELEGRAM, "5151"), at=T0))
    reading = asyncio.ensure_future(read())
    queued, _ = await asyncio.wait([reading, behind], timeout=0.1)  # they wait for that turn
    other.execute("COMMIT")
    other.close()
    await marking
    await behind  # queued behind it in aiosqlite's thread, not begun inside its transaction

    assert not waited and not queued
    assert await reading == T0  # it read after the driver's write


@pytest.mark.sqlite_only
async def test_after_the_drivers_writes_sqlalchemy_still_waits_for_another_process(
    engine: AsyncEngine, database_url: str
):
    """The driver's writes in the event loop's thread do not wait for another process's lock;
    SQLAlchemy's transaction on the same connection right after them still does."""
    contacts = SqlContacts(engine)
    await contacts.mark(KEY, at=T0)  # a driver write: its connection no longer waits
    other = sqlite3.connect(database_url.split("///", 1)[1], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock

    async def write() -> None:
        async with engine.begin() as db:
            await db.execute(update(table_of(CustomerRow)).values(promos_opt_in_at=T0))

    writing = asyncio.ensure_future(write())
    waited, _ = await asyncio.wait([writing], timeout=0.2)
    other.execute("COMMIT")
    other.close()
    await writing  # not "database is locked"
    await contacts.mark(KEY, at=T0, promos=False)  # and the driver's next write goes on

    assert not waited
