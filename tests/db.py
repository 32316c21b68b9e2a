"""Read tables with plain SQL, whichever database the suite runs on (SQLite or PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from storage.db import make_engine


async def table_rows(database_url: str, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` as a dict (empty when the table does not exist yet)."""
    engine = make_engine(database_url)
    try:
        async with engine.connect() as connection:
            exists = await connection.run_sync(lambda c: c.dialect.has_table(c, table))
            if not exists:
                return []
            result = await connection.execute(text(f"SELECT * FROM {table} ORDER BY 1"))
            return [dict(row) for row in result.mappings()]
    finally:
        await engine.dispose()
