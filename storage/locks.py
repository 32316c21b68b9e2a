"""One chat at a time across every replica: a PostgreSQL advisory lock per chat.

Several ``recargabot serve`` processes on one database must still handle a chat's updates in
order. Each process first queues a chat's updates behind its own asyncio lock, then takes the
chat's session-level advisory lock on a connection of its own, held while the update is handled.
A semaphore bounds how many such connections a process holds, so the pool always keeps
connections for the work done under the locks.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.model import ChatKey
from conversations.service import KeyedLocks
from storage.driver import lent
from storage.sqlite_driver import checked_out


def lock_id(key: ChatKey) -> int:
    """A stable signed 64-bit number for the chat (advisory locks are keyed by bigint)."""
    digest = hashlib.blake2b(f"{key.channel.value}:{key.chat_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class AdvisoryChatLocks:
    """Implements ``ChatLocks`` for PostgreSQL."""

    def __init__(self, engine: AsyncEngine, *, max_held: int) -> None:
        self._engine = engine
        self._local = KeyedLocks()
        self._slots = asyncio.Semaphore(max_held)

    @asynccontextmanager
    async def hold(self, key: ChatKey) -> AsyncIterator[None]:
        async with self._local.hold(key), self._slots, _advisory_lock(self._engine, key):
            yield

    @asynccontextmanager
    async def hold_now(self, key: ChatKey, *, within: float = 0.0) -> AsyncIterator[bool]:
        """As ``KeyedLocks.hold_now`` here; then hold it, waiting for another replica that
        holds it.

        Not ``pg_try_advisory_lock``: keeping the update whenever the other replica held the
        chat made the two-replica test miss a reply for 30 s under CPU load (1 run in 3; none in
        4 with the waiting hold), a stall in the kept path not understood yet."""
        async with self._local.hold_now(key, within=within) as now:
            if not now:
                yield False
                return
            async with self._slots, _advisory_lock(self._engine, key):
                yield True


_LOCK = "SELECT pg_advisory_lock($1)"
_UNLOCK = "SELECT pg_advisory_unlock($1)"


@asynccontextmanager
async def _advisory_lock(engine: AsyncEngine, key: ChatKey) -> AsyncIterator[None]:
    """The chat's session-level advisory lock, on a pooled connection of its own, through asyncpg
    itself (no SQLAlchemy execution layer around its two statements); the holder's transactions
    run on that connection too (``storage.driver.lent``). If the lock or its release
    does not finish (a cancelled wait may still have been granted), the session is ended, and the
    lock with it: the pool replaces a closed connection at its next checkout (``storage.db``)."""
    ident = lock_id(key)
    async with checked_out(engine) as db:
        settled = False
        try:
            await db.fetchval(_LOCK, ident)
            try:
                with lent(db):
                    yield
            finally:
                await db.fetchval(_UNLOCK, ident)
                settled = True
        finally:
            if not settled:
                db.terminate()
