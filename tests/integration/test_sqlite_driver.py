"""The faster SQLite driver (storage/sqlite_driver.py) is the one SQLAlchemy uses.

It subclasses SQLAlchemy's and aiosqlite's private classes, so a new SQLAlchemy could silently stop
using it (on 2.0.58 the connection ignored the custom cursor): the statements would still run,
only slower. These tests fail instead.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from storage.db import make_engine
from storage.sqlite_driver import _Connection, _Cursor

pytestmark = pytest.mark.sqlite_only


@pytest.mark.parametrize(
    "statement",
    ["SELECT 1", "CREATE TABLE t (x INTEGER)", "PRAGMA user_version = 1"],
)
async def test_statements_run_through_the_one_trip_cursor(tmp_path: Path, statement: str):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement))
            raw = await connection.get_raw_connection()

            cursor = result.context.cursor
            assert isinstance(raw.dbapi_connection, _Connection)
            assert type(cursor) is _Cursor
            # Set only by _Cursor._execute_async: the statement ran in our single trip.
            assert isinstance(cursor._cursor, sqlite3.Cursor)
    finally:
        await engine.dispose()
