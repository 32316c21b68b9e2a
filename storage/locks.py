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

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations.model import ChatKey
from conversations.service import KeyedLocks


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
        async with self._local.hold(key), self._slots, self._engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("SELECT pg_advisory_lock(:id)"), {"id": lock_id(key)})
            try:
                yield
            finally:
                await autocommit.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id(key)}
                )

    @asynccontextmanager
    async def hold_now(self, key: ChatKey) -> AsyncIterator[bool]:
        """Not held or waited for here: hold it (waiting for another replica that holds it)."""
        if key in self._local._users:
            yield False
            return
        async with self.hold(key):
            yield True
