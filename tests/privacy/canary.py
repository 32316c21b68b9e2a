"""Canary personal data, and ways to look for it in clear in logs and in the database."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from cryptography.fernet import InvalidToken
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from bot.app import Services
from conversations.cards import has_card_number
from storage.crypto import keys_of

DNI = "45678912"
PHONE = "987654321"
NAME = "Zacarías Canario"
CANARIES = (DNI, PHONE, NAME, "Canario", "987 654 321", "+51987654321")

NEW_CUSTOMER = ("hola", "Acepto", PHONE, NAME, "DNI", DNI, "Recarga de saldo", "S/ 10")


def found_in_logs(records: list[logging.LogRecord]) -> list[str]:
    """The canaries that occur in any log message or traceback."""
    lines = []
    for record in records:
        lines.append(record.getMessage())
        if record.exc_info:
            lines.append(logging.Formatter().formatException(record.exc_info))
    return [c for c in CANARIES if any(c in line for line in lines)]


async def raw_tables(engine: AsyncEngine) -> str:
    """Every row of every table as stored (no decryption), as text."""
    dump = []
    async with engine.connect() as connection:
        for name in SQLModel.metadata.tables:
            rows = await connection.execute(text(f"SELECT * FROM {name}"))
            dump.extend(str(tuple(row)) for row in rows)
    return "\n".join(dump)


async def found_in_tables(engine: AsyncEngine) -> list[str]:
    """The canaries that occur in clear in any column of any table, read raw (no decryption)."""
    joined = await raw_tables(engine)
    return [c for c in CANARIES if c in joined]


def raw_files(database_url: str) -> bytes:
    """The bytes of a SQLite database and its WAL (empty for other URLs)."""
    if not database_url.startswith("sqlite"):
        return b""
    path = Path(database_url.split("///", 1)[1])
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


_FERNET_TOKEN = re.compile(rb"gAAAAA[A-Za-z0-9_-]{20,}={0,2}")


def decrypted_files(services: Services) -> list[str]:
    """The bytes of the bot's database files, and every encrypted value in them decrypted: rows
    as stored, and what deleted rows and old WAL frames left behind."""
    raw, keys = raw_files(services.settings.database_url), keys_of(services.engine.dialect)
    opened = []
    for token in set(_FERNET_TOKEN.findall(raw)):
        with contextlib.suppress(InvalidToken):
            opened.append(keys.cipher.decrypt(token).decode())
    return [raw.decode("latin-1"), *opened]


# A keyed hash, an id or a key in hex: 32 characters or more, digits and a to f.
_HEX = re.compile(r"[0-9a-f]{32,}")


def card_in_clear(text: str) -> bool:
    """True if ``text`` holds a card number anywhere but inside a long run of hex.

    A random 64-hex digest holds a Luhn-valid 13-19 digit run 0.44% of the time, which is no
    card stored in clear; a card glued to anything shorter or other is still found.
    """
    cleared = _HEX.sub(lambda m: " " if any(c.isalpha() for c in m.group()) else m.group(), text)
    # has_card_number reads 10,000 characters: read overlapping windows of the whole text.
    return any(
        has_card_number(cleared[start : start + 9_000])
        for start in range(0, max(len(cleared), 1), 8_000)
    )


def card_on_disk(services: Services) -> bool:
    """True if a card number is in the database files, even in an encrypted value."""
    return any(card_in_clear(text) for text in decrypted_files(services))


def found_in_files(database_url: str) -> list[str]:
    """The canaries in the raw bytes of a SQLite database and its WAL (empty for other URLs)."""
    raw = raw_files(database_url)
    return [c for c in CANARIES if c.encode() in raw]


# The personal data the whole suite types into the bot most: none of it may reach a log line.
SUITE_CANARIES = (*CANARIES, "María Quispe", "Quispe", "Ana Díaz", "912345678", "45678912")
OUR_PACKAGES = ("bot", "conversations", "adapters", "storage")


class LogWatch(logging.Handler):
    """Searches every record our packages emit during the session; keeps only the leaks."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen = 0
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] not in OUR_PACKAGES:
            return
        self.seen += 1
        text = found_in_logs([record])
        if text:
            test = os.environ.get("PYTEST_CURRENT_TEST", "?")
            self.leaks.append(f"{test}: {record.name} {record.levelname} leaked {text}")

    @classmethod
    def install(cls) -> LogWatch:
        """Watch from now on, with our loggers at DEBUG so that every line is searched."""
        watch = cls()
        logging.getLogger().addHandler(watch)
        for package in OUR_PACKAGES:
            logging.getLogger(package).setLevel(logging.DEBUG)
        return watch
