"""Personal data at rest: Fernet-encrypted columns and keyed-hash (HMAC-SHA256) lookup columns.

Why here: encryption is a storage concern; the core and the repositories keep handling clear
values, and the column types encrypt on the way in and decrypt on the way out.

The keys belong to an engine, not to the process: ``attach(engine, keys)`` hangs a ``DataKeys``
on the engine's dialect, which every bind and result processor receives. Two engines (a serving
bot and a rotation job) can so hold different key lists. An engine without keys refuses to store
personal data rather than writing it in clear.

- ``EncryptedText`` stores a MultiFernet token: written with the newest key, readable with any
  key still listed, so a new key is added first, rows are re-encrypted (``rotate_all``), then
  the old key is removed. A token no key opens (tampered, or its key was dropped) is reported,
  without its value, and read as unreadable (``UNREADABLE``), never raised into the chat.
- ``KeyedHash`` stores HMAC-SHA256(hash key, value) as hex: equal values give equal hashes, so
  uniqueness and lookups work (``column == clear_value`` hashes the literal too), and the value
  cannot be read back or guessed from the database alone.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Dialect, String, Text, TypeDecorator, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import column, table

logger = logging.getLogger(__name__)

UNREADABLE = "⟨ilegible⟩"  # what a row no key opens reads as (shown, never stored back)
_ATTRIBUTE = "recargabot_data_keys"


class MissingDataKeys(RuntimeError):
    """Personal data would be written in clear: the engine has no data keys attached."""


class WrongDataKeys(RuntimeError):
    """The database holds personal data that the configured keys do not open."""


@dataclass(frozen=True)
class DataKeys:
    """The Fernet keys (newest first) and the hash key of one deployment."""

    fernet_keys: tuple[str, ...] = field(repr=False)
    hash_key: str = field(repr=False)

    def __repr__(self) -> str:
        return f"DataKeys(<{len(self.fernet_keys)} Fernet keys and a hash key, hidden>)"

    def __post_init__(self) -> None:
        if not self.fernet_keys or not self.hash_key:
            raise ValueError("data keys need at least one Fernet key and a hash key")

    @cached_property  # built once: every encrypted column read or written goes through it
    def cipher(self) -> MultiFernet:
        return MultiFernet([Fernet(key) for key in self.fernet_keys])

    def encrypt(self, value: str) -> str:
        """Encrypt with the newest key."""
        return self.cipher.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        """Decrypt with any listed key; raises InvalidToken if none opens it."""
        return self.cipher.decrypt(token.encode()).decode()

    @cached_property
    def _hash_key_bytes(self) -> bytes:
        return self.hash_key.encode()

    def digest(self, value: str) -> str:
        """The keyed hash of ``value`` (64 hex characters), by the one-shot C ``hmac.digest``."""
        return hmac.digest(self._hash_key_bytes, value.encode(), "sha256").hex()

    @classmethod
    def generate(cls) -> DataKeys:
        """Fresh random keys (the demo's, and each test's)."""
        return cls((Fernet.generate_key().decode(),), secrets.token_hex(32))


def new_fernet_key() -> str:
    """A fresh Fernet key, for DATA_ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()


def local_keys(path: Path) -> DataKeys:
    """The keys kept in ``path``, created (mode 0600) on first use."""
    text = path.read_text(encoding="utf-8") if path.exists() else None
    data = json.loads(text or create_private_once(path, _keys_json(DataKeys.generate())))
    return DataKeys(tuple(data["fernet_keys"]), data["hash_key"])


def save_local_keys(path: Path, keys: DataKeys) -> None:
    """Write the keys to ``path``, readable by the owner only."""
    write_private(path, _keys_json(keys))


def _keys_json(keys: DataKeys) -> str:
    return json.dumps({"fernet_keys": list(keys.fernet_keys), "hash_key": keys.hash_key})


def create_private_once(path: Path, text: str) -> str:
    """Create the owner-only file holding ``text`` unless a process racing us did; return the
    text that won, so replicas starting together agree on one secret."""
    draft = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    write_private(draft, text)  # complete before it has the real name: no one reads it half-made
    try:
        os.link(draft, path)  # atomic, and refused if the name exists
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text(encoding="utf-8")


def write_private(path: Path, text: str) -> None:
    """Write a local secret file, readable by its owner only from before the first byte."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the last folder: owner-only
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")


def attach(engine: AsyncEngine, keys: DataKeys) -> None:
    """Make ``engine`` encrypt and hash with ``keys``."""
    setattr(engine.dialect, _ATTRIBUTE, keys)


def keys_of(dialect: Dialect) -> DataKeys:
    keys = getattr(dialect, _ATTRIBUTE, None)
    if not isinstance(keys, DataKeys):
        raise MissingDataKeys("attach data keys to the engine before storing personal data")
    return keys


class EncryptedText(TypeDecorator[str]):
    """Text stored as a Fernet token; read back in clear (``UNREADABLE`` if no key opens it)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keys_of(dialect).encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        try:
            return keys_of(dialect).decrypt(value)
        except InvalidToken:
            report_unreadable()
            return UNREADABLE


class KeyedHash(TypeDecorator[str]):
    """A value stored as its keyed hash; comparisons hash the clear literal the same way."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keys_of(dialect).digest(value)


def report_unreadable() -> None:
    """Alert the operators that a stored value could not be decrypted (the value is not logged)."""
    logger.error("ALERT unreadable encrypted value: tampered, or its key was removed")


# ---------------------------------------------------------------- rotation


@dataclass(frozen=True)
class EncryptedColumn:
    table: str
    key: str  # the primary key column
    column: str


@dataclass
class RotationReport:
    rotated: int = 0
    unreadable: int = 0


async def rotate_all(
    engine: AsyncEngine, columns: Sequence[EncryptedColumn], *, batch: int = 200
) -> RotationReport:
    """Re-encrypt every value of ``columns`` with the newest key, one short transaction a batch.

    A row the bot rewrote meanwhile is left alone (the UPDATE matches the old token only), since
    the bot already writes with the newest key. Unreadable tokens are counted and reported.
    """
    keys, report = keys_of(engine.dialect), RotationReport()
    for target in columns:
        after: Any = None
        while (rows := await _batch(engine, target, after, batch)) is not None:
            after = rows[-1][0]
            await _rotate_batch(engine, target, rows, keys, report)
    if report.unreadable:
        report_unreadable()
    return report


async def _batch(
    engine: AsyncEngine, target: EncryptedColumn, after: Any, size: int
) -> list[tuple[Any, str]] | None:
    t = table(target.table, column(target.key), column(target.column))
    stmt = select(t.c[target.key], t.c[target.column]).where(t.c[target.column].is_not(None))
    if after is not None:
        stmt = stmt.where(t.c[target.key] > after)
    stmt = stmt.order_by(t.c[target.key]).limit(size)
    async with engine.connect() as connection:
        rows = [(row[0], row[1]) for row in (await connection.execute(stmt)).all()]
    return rows or None


async def _rotate_batch(
    engine: AsyncEngine,
    target: EncryptedColumn,
    rows: list[tuple[Any, str]],
    keys: DataKeys,
    report: RotationReport,
) -> None:
    t = table(target.table, column(target.key), column(target.column))
    cipher = keys.cipher
    async with engine.begin() as connection:
        for row_key, token in rows:
            try:
                fresh = cipher.rotate(token.encode()).decode()
            except InvalidToken:
                report.unreadable += 1
                continue
            stmt = (
                update(t)
                .where(t.c[target.key] == row_key, t.c[target.column] == token)
                .values({target.column: fresh})
            )
            report.rotated += (await connection.execute(stmt)).rowcount
