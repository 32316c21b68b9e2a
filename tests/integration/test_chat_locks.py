"""Advisory chat locks: one chat at a time across replicas sharing one PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

import storage.db
from conversations.model import Channel, ChatKey
from conversations.session import Session
from storage.chats import SqlConversationStore
from storage.db import make_engine
from storage.driver import Driver, Work
from storage.locks import AdvisoryChatLocks, lock_id

pytestmark = pytest.mark.postgres_only

CHAT = ChatKey(Channel.TELEGRAM, "1001")
OTHER = ChatKey(Channel.TELEGRAM, "1002")


@pytest.fixture
async def replicas(database_url) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines, as two `recargabot serve` processes would have."""
    first, second = make_engine(database_url), make_engine(database_url)
    yield first, second
    await first.dispose()
    await second.dispose()


async def _free(engine: AsyncEngine, key: ChatKey) -> bool:
    """Whether another session could take the chat's lock right now (released at once)."""
    async with engine.connect() as connection:
        taken = (
            await connection.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id(key)})
        ).scalar()
        if taken:
            await connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id(key)})
    return bool(taken)


async def test_a_chat_held_by_one_replica_waits_for_it_in_the_other(replicas):
    first, second = replicas
    order: list[str] = []

    async def second_replica() -> None:
        async with AdvisoryChatLocks(second, max_held=2).hold(CHAT):
            order.append("second")

    async with AdvisoryChatLocks(first, max_held=2).hold(CHAT):
        waiting = asyncio.create_task(second_replica())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(waiting), 0.3)
        order.append("first")
    await waiting

    assert order == ["first", "second"]
    assert await _free(second, CHAT)


async def test_different_chats_do_not_wait_for_each_other(replicas):
    first, second = replicas

    async with AdvisoryChatLocks(first, max_held=2).hold(CHAT):
        assert not await _free(second, CHAT)
        assert await _free(second, OTHER)


async def test_hold_now_passes_a_chat_held_here_and_holds_a_chat_free_here(replicas):
    """A chat this process holds: the caller keeps the update (False) at once. Otherwise the
    chat is held, across replicas too (after waiting for one that holds it)."""
    first, second = replicas
    locks = AdvisoryChatLocks(first, max_held=2)

    async with locks.hold(CHAT), locks.hold_now(CHAT) as now:
        assert now is False
    async with locks.hold_now(CHAT) as now:
        assert now is True
        assert not await _free(second, CHAT)
    assert await _free(second, CHAT)


async def test_a_wait_cancelled_leaves_no_lock_behind(replicas):
    first, second = replicas

    async with AdvisoryChatLocks(first, max_held=2).hold(CHAT):
        waiting = asyncio.create_task(_hold_briefly(AdvisoryChatLocks(second, max_held=2)))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(waiting), 0.3)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    # The cancelled wait's session was ended, not pooled with a lock it may have been granted.
    assert await _free(first, CHAT)
    assert await _free(second, CHAT)


async def test_the_holder_runs_its_transactions_on_the_connection_holding_the_lock(
    engine, replicas
):
    """No checkout per transaction under a held chat; a task started inside checks out its
    own, and runs beside the holder's; a transaction that fails there keeps the lock."""
    _, other = replicas
    checkouts: list[object] = []
    event.listen(engine.sync_engine, "checkout", lambda *_: checkouts.append(None))
    store = SqlConversationStore(engine)

    def fails() -> Work[None]:
        yield from ()
        raise RuntimeError("inside the transaction")

    async with AdvisoryChatLocks(engine, max_held=2).hold(CHAT):
        held = len(checkouts)
        await store.save(CHAT, Session(), outgoing=[])
        await store.load(CHAT)
        assert len(checkouts) == held
        beside = asyncio.create_task(store.load(OTHER))  # starts as the holder's load waits
        assert await store.load(CHAT) == Session()
        assert await beside == Session()
        assert len(checkouts) == held + 1
        with pytest.raises(RuntimeError):
            await Driver(engine).run(fails())
        assert not await _free(other, CHAT)
        await store.save(CHAT, Session(), outgoing=[])
    assert await _free(other, CHAT)


async def _hold_briefly(locks: AdvisoryChatLocks) -> None:
    async with locks.hold(CHAT):
        pass


async def test_a_pooled_connection_the_server_ended_is_replaced_not_lent(replicas, monkeypatch):
    """No ping on every checkout: a connection known closed, or idle past the limit and found
    dead, is replaced."""
    engine, killer = replicas
    async with engine.connect() as connection:
        pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar()
    async with killer.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    monkeypatch.setattr(storage.db, "PING_AFTER_IDLE_S", 0.0)
    async with engine.connect() as connection:
        again = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar()
    assert again != pid
