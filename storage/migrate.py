"""Schema migrations (Alembic): upgrade a database to the models' schema, or check they agree.

Migrations run on a connection of our own engine, so SQLite gets its pragmas and PostgreSQL its
driver; on PostgreSQL an advisory lock lets several replicas start at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_KEY = 7_251_993  # any constant: one advisory lock for "migrating recargabot"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the database to the latest revision (a no-op when it is there already)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    command.upgrade(alembic_config(connection), "head")


async def new_revision(engine: AsyncEngine, message: str) -> None:
    """Write a migration for what the models changed since the latest one (developers' tool)."""
    await upgrade(engine)
    async with engine.begin() as connection:
        await connection.run_sync(
            lambda c: command.revision(alembic_config(c), message=message, autogenerate=True)
        )


async def differences(engine: AsyncEngine, metadata: MetaData = SQLModel.metadata) -> list[Any]:
    """What ``metadata`` has that the migrated database lacks (empty when they agree)."""
    async with engine.connect() as connection:
        return await connection.run_sync(lambda c: _compare(c, metadata))


def _compare(connection: Connection, metadata: MetaData) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))
